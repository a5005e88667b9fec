"""atheris: the incremental SSE decoder, fed arbitrary bytes split at arbitrary points.

Besides "only typed errors", checks that the split does not matter: feeding the bytes in
pieces gives the same payloads (or the same error) as feeding them at once.

Run: ``python fuzz/fuzz_sse.py /tmp/tgispy-fuzz/sse -max_total_time=60``
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from collections.abc import Iterator

import atheris
from _common import protocol_facts, seed_corpus, snapshot_items

with atheris.instrument_imports(include=["tgispy"]):
    from tgispy.errors import TgispyError
    from tgispy.tgi import SSEDecoder, parse_chat_chunk, parse_stream_event


def seeds() -> Iterator[bytes]:
    stream = protocol_facts()["sse"]["/generate_stream"]
    events = [stream["token_event"], stream["final_event"], stream["error_event"]]
    items = [i for i in snapshot_items() if isinstance(i, dict) and i.get("object")]
    for sep in (b"data: ", b"data:"):
        for end in (b"\n\n", b"\r\n\r\n"):
            body = b"".join(sep + json.dumps(e).encode() + end for e in events)
            yield bytes([3, 7, 11]) + body + b": keep-alive" + end + sep + b"[DONE]" + end
    for item in items[:40]:
        yield bytes([5]) + b"data: " + json.dumps(item).encode() + b"\n\n"


def decode(chunks: list[bytes]) -> list[str] | type[TgispyError]:
    decoder = SSEDecoder()
    out: list[str] = []
    try:
        for chunk in chunks:
            out.extend(decoder.feed(chunk))
        out.extend(decoder.close())
    except TgispyError as exc:
        return type(exc)
    return out


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntInRange(0, 64) for _ in range(fdp.ConsumeIntInRange(0, 8)))
    stream = fdp.ConsumeBytes(atheris.ALL_REMAINING)
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    pieces = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    whole = decode([stream])
    split = decode(pieces)
    if whole != split:
        raise AssertionError(f"split changed the result: {whole!r} != {split!r}")
    if isinstance(whole, list):
        for payload in whole:
            for parse in (parse_stream_event, parse_chat_chunk):
                with contextlib.suppress(TgispyError):
                    parse(payload)


def main() -> None:
    seed_corpus(sys.argv, seeds)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
