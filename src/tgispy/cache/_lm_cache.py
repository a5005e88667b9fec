"""The LM call cache: a memory tier in front of an optional disk tier."""

from __future__ import annotations

import logging
import threading
from typing import Any

from tgispy.cache._disk import DiskCache, _decode_or_none, default_cache_dir
from tgispy.cache._keys import decode_value, encode_value
from tgispy.cache._memory import MemoryCache

__all__ = ["LMCache"]

logger = logging.getLogger(__name__)

_default_lock = threading.Lock()
_default: LMCache | None = None


class LMCache:
    """Two-tier cache of LM results: memory (LRU) in front of disk, each tier optional.

    Keys come from :func:`~tgispy.cache.cache_key`; values are JSON-able data (the parsed
    generation as a dict). ``get`` looks in memory, then on disk, copying a disk hit into memory;
    ``set`` writes both tiers. Errors are refused (``set`` of an exception raises
    :class:`~tgispy.errors.ConfigError`); a broken disk tier only costs misses.

    Args:
        memory: the memory tier; None turns it off.
        disk: the disk tier; None turns it off.
        write_behind: write to disk from the disk tier's worker thread, batched, so an event
            loop serving many requests never waits for SQLite (~60 us a write). Needs a memory
            tier; :meth:`flush` waits for pending writes, and they are flushed at exit.

    Example:
        >>> from tgispy.cache import LMCache, MemoryCache, cache_key
        >>> cache = LMCache(memory=MemoryCache(maxsize=100))
        >>> key = cache_key({"model": "m", "endpoint": "/generate", "body": {"inputs": "Hi"}})
        >>> cache.get(key) is None
        True
        >>> cache.set(key, {"choices": [{"text": " there"}]})
        >>> cache.get(key)
        {'choices': [{'text': ' there'}]}
    """

    def __init__(
        self,
        *,
        memory: MemoryCache | None = None,
        disk: DiskCache | None = None,
        write_behind: bool = False,
    ) -> None:
        self._memory = memory
        self._disk = disk
        self._write_behind = write_behind and disk is not None and memory is not None

    @property
    def memory(self) -> MemoryCache | None:
        """The memory tier, if any."""
        return self._memory

    @property
    def disk(self) -> DiskCache | None:
        """The disk tier, if any (check :attr:`DiskCache.available` for whether it opened)."""
        return self._disk

    def get(self, key: str) -> Any | None:
        """Return the value cached under ``key`` (memory first, then disk), or None.

        A key the disk tier knows it does not hold is a miss without an SQLite read.
        """
        memory = self._memory
        if memory is not None:
            text = memory._get_text(key)
            if text is not None:
                return decode_value(text)
        disk = self._disk
        if disk is None:
            return None
        text = disk._get_text(key)
        if text is None:
            return None
        value = _decode_or_none(key, text)
        if value is not None and memory is not None:
            memory._set_text(key, text)
        return value

    def set(self, key: str, value: Any) -> None:
        """Cache a JSON-able ``value`` under ``key`` in every tier.

        Raises:
            ConfigError: ``value`` is an exception (errors are never cached), None, or not
                JSON-serializable. Disk write failures are logged, not raised.
        """
        text = encode_value(value)
        if self._memory is not None:
            self._memory._set_text(key, text)
        disk = self._disk
        if disk is None:
            return
        if self._write_behind:
            disk._set_later(key, text)
        else:
            disk._set_text(key, text)

    def flush(self) -> None:
        """Wait until every write-behind disk write has been done."""
        if self._disk is not None:
            self._disk._flush()

    def clear(self) -> None:
        """Drop every entry from both tiers."""
        self.flush()
        if self._memory is not None:
            self._memory.clear()
        if self._disk is not None:
            self._disk.clear()

    def close(self) -> None:
        """Write pending entries and close the disk tier's connection (it reopens on next use)."""
        if self._disk is not None:
            self._disk.close()

    def __repr__(self) -> str:
        return f"LMCache(memory={self._memory!r}, disk={self._disk!r})"

    @classmethod
    def default(cls) -> LMCache:
        """The process-wide shared cache, created on first use.

        Memory (10,000 entries) plus disk in :func:`~tgispy.cache.default_cache_dir`
        (``$TGISPY_CACHEDIR``, else ``~/.cache/tgispy``). ``TGISPY_CACHEDIR`` set to ``""``,
        ``off``, ``0``, ``false``, ``no`` or ``none`` gives a memory-only cache. The environment is
        read once, when the shared cache is created; :meth:`set_default` replaces it.

        Example:
            >>> cache = LMCache.default()  # doctest: +SKIP
        """
        global _default
        cache = _default
        if cache is not None:
            return cache
        with _default_lock:
            if _default is None:
                disk = DiskCache() if default_cache_dir() is not None else None
                _default = LMCache(memory=MemoryCache(), disk=disk, write_behind=True)
            return _default

    @classmethod
    def set_default(cls, cache: LMCache | None) -> None:
        """Replace the process-wide cache; None makes the next :meth:`default` rebuild it.

        The old cache is not closed: clients created earlier may still hold it.

        Example:
            >>> LMCache.set_default(LMCache(memory=MemoryCache(maxsize=10)))
            >>> LMCache.default().memory.maxsize
            10
            >>> LMCache.set_default(None)
        """
        global _default
        with _default_lock:
            _default = cache
