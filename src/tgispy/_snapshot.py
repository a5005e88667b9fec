"""A hashable, typed snapshot of a flat mapping of settings: the key of per-call memos.

Programs send the same settings call after call, so the request builder and the cache key
remember what they derived from them; this is the key both look them up by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flat_snapshot"]

_SCALARS = frozenset({str, int, float, bool, type(None)})


def flat_snapshot(values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``values`` as a hashable tuple when it holds only scalars and lists of strings, else None.

    Types are part of it: ``True == 1`` and ``1.0 == 1`` in Python, and a memo keyed on values
    alone would hand one's result to the other. Order is too (a miss, never a wrong hit).

    Example:
        >>> flat_snapshot({"n": 1, "stop": ["\\n"]}) == flat_snapshot({"n": True, "stop": ["\\n"]})
        False
        >>> flat_snapshot({"grammar": {"type": "json"}}) is None
        True
    """
    parts: list[Any] = []
    for name, value in values.items():
        kind = type(value)
        if kind is list or kind is tuple:
            for item in value:
                if type(item) is not str:
                    return None
            parts.append((name, kind, *value))
        elif kind in _SCALARS:
            parts.append((name, kind, value))
        else:
            return None
    return tuple(parts)
