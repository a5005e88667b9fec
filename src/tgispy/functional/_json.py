"""JSON decoding that reports errors in ``ujson``'s words, as DSPy 2.4's typed predictors did.

DSPy 2.4 parsed typed outputs with ``ujson`` and showed the model ``repr(error)`` on a retry, so
the retry prompt contains e.g. ``JSONDecodeError('Expected object or value')``. ``ujson`` is used
when installed (exact); otherwise the standard library decodes and the common top-level failures
get ``ujson``'s message (empty input, trailing data, a broken literal or an unquoted word). A
failure inside an object or array keeps the standard library's wording.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

__all__ = ["JSONDecodeError", "loads_like_ujson"]

_LITERALS = {"n": "null", "t": "true", "f": "false", "I": "Infinity", "N": "NaN"}


class JSONDecodeError(ValueError):
    """Invalid JSON, with ``ujson``'s message (its ``repr`` is what the model is shown)."""


def _ujson_message(text: str, error: json.JSONDecodeError) -> str:
    stripped = text.lstrip()
    if not stripped.strip():
        return "Expected object or value"
    try:
        json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError:
        pass
    else:
        return "Trailing data"
    first = stripped[0]
    if first in _LITERALS:
        return f"Unexpected character found when decoding '{_LITERALS[first]}'"
    if first not in '{["-0123456789':
        return "Expected object or value"
    before = text[: error.pos].rstrip()[-1:]
    if error.msg.startswith("Expecting property name"):
        # `{a: 1}` (no key) and `{"a": 1,}` (trailing comma) read differently in ujson.
        if before == "{":
            return "Expected object or value"
        return "Unexpected character in found when decoding object value"
    if error.msg.startswith("Expecting ',' delimiter") and _innermost(text, error.pos) == "{":
        return "Unexpected character in found when decoding object value"
    return error.msg


def _innermost(text: str, pos: int) -> str:
    """The innermost open bracket at ``pos`` (strings skipped), ``""`` at the top level."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def loads_like_ujson(text: str) -> Any:
    """``ujson.loads(text)``; without ``ujson``, :func:`json.loads` with ``ujson``'s errors.

    Example:
        >>> loads_like_ujson('{"a": 1}')
        {'a': 1}
        >>> loads_like_ujson("not json")
        Traceback (most recent call last):
        ...
        tgispy.functional._json.JSONDecodeError: Unexpected character found when decoding 'null'
    """
    try:
        ujson = importlib.import_module("ujson")
    except ImportError:
        pass
    else:
        return ujson.loads(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONDecodeError(_ujson_message(text, exc)) from None
