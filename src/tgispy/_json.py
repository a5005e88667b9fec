"""JSON encoding of request bodies: orjson when ``tgispy[speed]`` installed it, else the stdlib.

Only encoding takes this path: decoding stays on the stdlib's strict decoder, whose error
behaviour the protocol parsers and their fuzz tests pin.

Example:
    >>> dumps_bytes({"inputs": "é"}) in (b'{"inputs":"\\xc3\\xa9"}', b'{"inputs": "\\xc3\\xa9"}')
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

__all__ = ["dumps_bytes"]


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _pick() -> Callable[[Any], bytes]:
    if os.environ.get("TGISPY_JSON", "").lower() == "stdlib":
        return _stdlib
    try:
        import orjson
    except ImportError:
        return _stdlib
    option = orjson.OPT_NON_STR_KEYS

    def fast(value: Any) -> bytes:
        try:
            return orjson.dumps(value, option=option)
        except (
            TypeError
        ):  # what orjson will not encode (lone surrogates, big ints): the stdlib's say
            return _stdlib(value)

    return fast


#: ``value`` as UTF-8 JSON bytes
dumps_bytes: Callable[[Any], bytes] = _pick()
