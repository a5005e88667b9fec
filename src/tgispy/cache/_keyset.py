"""The disk tier's key filter: which keys this process knows may be on disk.

A miss-only workload (every call a new prompt) would otherwise pay one SQLite read per call to
learn that the key is absent. The filter holds the hash of every key on disk, loaded once when the
directory is opened (in steps, on the disk worker, while calls go on) and kept up to date by this
process's own writes; a key that is not in it is a miss without touching SQLite.

What it cannot know: entries that *another process* (or another :class:`DiskCache` over the same
directory) writes after this one loaded its filter. Those read as misses here, and the next
result is simply generated and stored again: it is a cache, a miss is always allowed. Entries
evicted or cleared behind our back only cost a read that then misses. Until the load finishes,
and for directories with more than :data:`MAX_KEYS` entries, every key "may be present".

Memory: about 60 bytes per entry on disk (a set of ints), e.g. 6 MB for 100,000 entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

__all__ = ["MAX_KEYS", "KeyFilter", "KeyLoader"]

#: beyond this many entries on disk the filter gives up (every key "may be present")
MAX_KEYS = 1_000_000
#: keys loaded per step of the load (the worker serves reads and writes between steps)
STEP = 2_000


class KeyFilter:
    """A set of key hashes with a "not loaded yet" state; thread-safe under the GIL.

    Example:
        >>> f = KeyFilter()
        >>> f.may_contain("k")  # not loaded: anything may be on disk
        True
        >>> f.mark_loaded(f.epoch)
        >>> f.may_contain("k"), f.add("k"), f.may_contain("k")
        (False, None, True)
    """

    __slots__ = ("_hashes", "_loaded", "epoch", "usable")

    def __init__(self) -> None:
        self._hashes: set[int] = set()
        self._loaded = False
        self.usable = True
        self.epoch = 0

    def may_contain(self, key: str) -> bool:
        """False only when ``key`` is known absent from disk."""
        return not self._loaded or hash(key) in self._hashes

    @property
    def loaded(self) -> bool:
        return self._loaded

    def add(self, key: object) -> None:
        if self.usable:
            self._hashes.add(hash(key))

    def add_loaded(self, epoch: int, keys: list[object]) -> None:
        if epoch != self.epoch or not self.usable:
            return
        hashes = self._hashes
        for key in keys:
            hashes.add(hash(key))
        if len(hashes) > MAX_KEYS:
            self.give_up()

    def mark_loaded(self, epoch: int) -> None:
        if epoch == self.epoch and self.usable:
            self._loaded = True

    def give_up(self) -> None:
        """Too many keys (or the load failed): every key may be present from now on."""
        self.usable = False
        self._loaded = False
        self._hashes = set()

    def reset_empty(self) -> None:
        """The disk was cleared: nothing is on it (a load in progress is abandoned)."""
        self.epoch += 1
        self._hashes = set()
        self.usable = True
        self._loaded = True


class KeyLoader:
    """Loads a :class:`KeyFilter` in steps from an iterator of the keys on disk (a worker task).

    Args:
        keys: a fresh iterator over the keys on disk; called again after :meth:`reset`.
        filter: the filter to fill.
    """

    def __init__(self, keys: Callable[[], Iterator[object]], filter: KeyFilter) -> None:
        self._keys = keys
        self._filter = filter
        self._epoch = filter.epoch
        self._iter: Iterator[object] | None = None

    def step(self) -> bool:
        f = self._filter
        if self._epoch != f.epoch or not f.usable:
            return False  # cleared (nothing left to load) or given up
        try:
            if self._iter is None:
                self._iter = self._keys()
            chunk = list(islice(self._iter, STEP))
        except Exception:
            # An unreadable database: reads will find out (and miss) on their own.
            f.give_up()
            raise
        f.add_loaded(self._epoch, chunk)
        if len(chunk) < STEP:
            f.mark_loaded(self._epoch)
            return False
        return True

    def reset(self) -> None:
        self._iter = None
