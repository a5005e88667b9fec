"""atheris: TGI response and stream-event parsers on arbitrary bytes.

Targets ``parse_generate_response``, ``parse_chat_response`` (bytes and decoded JSON),
``parse_stream_event``, ``parse_chat_chunk`` and ``usage_from_headers``.

Run: ``python fuzz/fuzz_responses.py /tmp/tgispy-fuzz/responses -max_total_time=60``
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator

import atheris
from _common import seed_corpus, snapshot_items

with atheris.instrument_imports(include=["tgispy"]):
    from tgispy.errors import TgispyError
    from tgispy.tgi import (
        parse_chat_chunk,
        parse_chat_response,
        parse_generate_response,
        parse_stream_event,
        usage_from_headers,
    )

PARSERS = (parse_generate_response, parse_chat_response)
EVENT_PARSERS = (parse_stream_event, parse_chat_chunk)


def seeds() -> Iterator[bytes]:
    for item in snapshot_items():
        yield bytes([0]) + json.dumps(item).encode()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    selector, body = data[0], data[1:]
    text = body.decode("utf-8", "replace")
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        decoded = None
    calls = [
        (PARSERS[selector % 2], body),
        (EVENT_PARSERS[selector % 2], text),
        (PARSERS[selector % 2], decoded),
    ]
    for parse, arg in calls:
        with contextlib.suppress(TgispyError):
            parse(arg)
    usage_from_headers({"x-prompt-tokens": text[:20], "x-generated-tokens": text[20:40]})


def main() -> None:
    seed_corpus(sys.argv, seeds)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
