"""The in-memory tier: a thread-safe LRU bounded by entry count."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from tgispy.cache._keys import decode_value, encode_value
from tgispy.errors import ConfigError

__all__ = ["MemoryCache"]


class MemoryCache:
    """A thread-safe least-recently-used cache of JSON values, bounded by entry count.

    Values are kept as JSON text and decoded on every hit, so a caller that mutates what
    :meth:`get` returned cannot change the cached value, and a value reads back the same from
    memory as from disk (tuples come back as lists).

    Args:
        maxsize: the most entries kept; the least recently used one is dropped first.

    Example:
        >>> mem = MemoryCache(maxsize=2)
        >>> mem.set("a", {"text": "x"})
        >>> mem.get("a")
        {'text': 'x'}
        >>> mem.get("missing") is None
        True
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigError(
                f"MemoryCache(maxsize={maxsize!r}): maxsize must be an int >= 1; to turn the "
                "memory tier off, pass memory=None to LMCache."
            )
        self._maxsize = maxsize
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def maxsize(self) -> int:
        """The most entries kept."""
        return self._maxsize

    def get(self, key: str) -> Any | None:
        """Return the value stored under ``key`` (marking it recently used), or None."""
        text = self._get_text(key)
        return None if text is None else decode_value(text)

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-able ``value`` under ``key``, evicting the least recently used entry.

        Raises:
            ConfigError: ``value`` is an exception, None, or not JSON-serializable.
        """
        self._set_text(key, encode_value(value))

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __repr__(self) -> str:
        return f"MemoryCache(maxsize={self._maxsize}, entries={len(self)})"

    # Text-level access for LMCache: encode once, and promote disk hits without re-encoding.
    def _get_text(self, key: str) -> str | None:
        with self._lock:
            text = self._items.get(key)
            if text is not None:
                self._items.move_to_end(key)
            return text

    def _set_text(self, key: str, text: str) -> None:
        with self._lock:
            self._items[key] = text
            self._items.move_to_end(key)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)
