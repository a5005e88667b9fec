"""atheris: ``ServerInfo.from_json`` and its version logic on arbitrary ``/info`` bodies.

Run: ``python fuzz/fuzz_info.py /tmp/tgispy-fuzz/info -max_total_time=60``
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import atheris
from _common import seed_corpus

with atheris.instrument_imports(include=["tgispy"]):
    from tgispy.errors import TgispyError
    from tgispy.tgi import ServerInfo

FLAGS = ("grammar", "chat", "frequency_penalty", "adapters", "stream_usage")


def seeds() -> Iterator[bytes]:
    yield json.dumps({"version": "3.3.6-dev0", "max_input_tokens": 4095, "max_best_of": 2}).encode()
    yield json.dumps({"version": "0.9.4", "max_input_length": 1000}).encode()
    yield json.dumps({"version": "v2.4.1", "max_total_tokens": 4096, "model_id": "m"}).encode()


def test_one_input(data: bytes) -> None:
    try:
        decoded = json.loads(data)
    except (ValueError, RecursionError):
        decoded = data.decode("utf-8", "replace")
    for candidate in (decoded, {"version": data.decode("utf-8", "replace")}):
        try:
            info = ServerInfo.from_json(candidate)
        except TgispyError:
            continue
        version = info.version_tuple
        if version is not None and (len(version) != 3 or min(version) < 0):
            raise AssertionError(f"bad version tuple {version!r}")
        for flag in FLAGS:
            if not isinstance(getattr(info, f"supports_{flag}"), bool):
                raise AssertionError(flag)


def main() -> None:
    seed_corpus(sys.argv, seeds)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
