"""atheris: TGI error mapping (HTTP error responses, SSE error events, Retry-After).

``error_from_response`` and ``error_from_payload`` must *return* a picklable ``TGIError`` for
anything; ``parse_retry_after`` returns ``None`` or a finite number of seconds >= 0.

Run: ``python fuzz/fuzz_errors.py /tmp/tgispy-fuzz/errors -max_total_time=60``
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from collections.abc import Iterator

import atheris
from _common import protocol_facts, seed_corpus

with atheris.instrument_imports(include=["tgispy"]):
    from tgispy.errors import TGIError
    from tgispy.tgi import error_from_payload, error_from_response, parse_retry_after


def seeds() -> Iterator[bytes]:
    facts = protocol_facts()
    for entry in facts["infer_errors"]:
        body = {
            "error": entry.get("message", entry.get("message_prefix", "x")),
            "error_type": entry["error_type"],
        }
        yield b"\x01\xa6\x01" + b"2" + json.dumps(body).encode()
    yield (
        b"\x01\xad\x00\x00"
        + json.dumps(facts["sse"]["/v1/chat/completions (stream=true)"]["error_event"]).encode()
    )
    for entry in facts["other_errors"]:
        if isinstance(entry.get("body"), str):
            yield b"\x01\x90\x00" + entry["body"].encode()
    yield b"\x01\xf7\x1dWed, 21 Oct 2015 07:28:00 GMT"


def check(err: object) -> None:
    if not isinstance(err, TGIError):
        raise AssertionError(f"not a TGIError: {err!r}")
    again = pickle.loads(pickle.dumps(err))
    if type(again) is not type(err) or str(again) != str(err):
        raise AssertionError(f"pickling changed {err!r}")


def test_one_input(data: bytes) -> None:
    # layout: 2 bytes of status, 1 byte n, n bytes of Retry-After, then the body
    if len(data) < 3:
        return
    status = int.from_bytes(data[:2], "big") % 1000
    size = data[2] % 41
    retry = data[3 : 3 + size].decode("utf-8", "replace")
    body = data[3 + size :]
    check(error_from_response(status, body, replica="http://r", headers={"retry-after": retry}))
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        check(error_from_payload(payload, replica="http://r"))
    seconds = parse_retry_after(retry, now=0.0)
    if seconds is not None and not (seconds >= 0 and math.isfinite(seconds)):
        raise AssertionError(f"Retry-After {retry!r} -> {seconds!r}")


def main() -> None:
    seed_corpus(sys.argv, seeds)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
