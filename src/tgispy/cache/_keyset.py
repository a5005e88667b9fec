"""The disk tier's key filter: which keys this process knows may be on disk.

A miss-only workload (every call a new prompt) would otherwise pay one SQLite read per call to
learn that the key is absent. The filter (a scalable Bloom filter over the keys' hashes) is loaded
once when the directory is opened (in steps, on the disk worker, while calls go on) and kept up
to date by this process's own writes; a key that is not in it is a miss without touching SQLite.

What it cannot know: entries that *another process* (or another :class:`DiskCache` over the same
directory) writes after this one loaded its filter. Those read as misses here, and the next
result is simply generated and stored again: it is a cache, a miss is always allowed. Entries
evicted or cleared behind our back, and the filter's false positives (about 1 in 200 per
filter; the filters of a grown key set add up: 1.5% measured with 90,000 keys in four), only cost
a read that then misses. Until the load finishes, every key "may be present".

Memory: 16 bits per key in filters that grow 4 times at a time, so at most about 7 bytes per
key: 8 KiB at first, 0.7 MB for 100,000 entries, 2.7 MB for a million.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from itertools import islice

__all__ = ["STEP", "KeyFilter", "KeyLoader"]

#: keys loaded per step of the load (the worker serves reads and writes between steps)
STEP = 2_000
#: bits per key and bit positions per key of each Bloom filter: about 0.6% false positives
_BITS_PER_KEY = 16
_PROBES = 3
#: keys the first filter holds; each next one holds 4 times as many
_FIRST_CAPACITY = 4_096
_GROWTH = 4


class _Bloom:
    """One fixed-size Bloom filter over ``hash(key)`` (double hashing of its two halves)."""

    __slots__ = ("bits", "capacity", "count", "mask")

    def __init__(self, capacity: int) -> None:
        size = 1 << max(10, (capacity * _BITS_PER_KEY - 1).bit_length())  # a power of two
        self.bits = bytearray(size // 8)
        self.mask = size - 1
        self.capacity = capacity
        self.count = 0

    # The _PROBES (3) bit positions h, h + step, h + 2 * step, unrolled: these run on every
    # cache miss and write, where a loop costs twice as much.
    def add(self, h: int) -> None:
        bits, mask = self.bits, self.mask
        step = (h >> 32) | 1
        pos = h & mask
        bits[pos >> 3] |= 1 << (pos & 7)
        pos = (h + step) & mask
        bits[pos >> 3] |= 1 << (pos & 7)
        pos = (h + 2 * step) & mask
        bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def __contains__(self, h: int) -> bool:
        bits, mask = self.bits, self.mask
        step = (h >> 32) | 1
        pos = h & mask
        if not bits[pos >> 3] & (1 << (pos & 7)):
            return False
        pos = (h + step) & mask
        if not bits[pos >> 3] & (1 << (pos & 7)):
            return False
        pos = (h + 2 * step) & mask
        return bool(bits[pos >> 3] & (1 << (pos & 7)))


class KeyFilter:
    """Which keys may be on disk: a scalable Bloom filter with a "not loaded yet" state.

    A key never added is reported absent, except for false positives (about 1 in 200 per filter,
    summed over the filters: 1.5% with 90,000 keys in four), each costing an SQLite read that
    then misses. Memory: at most about 7 bytes per key.
    Lookups take no lock; adds take one (two threads setting bits of one byte must not lose one).

    Example:
        >>> f = KeyFilter()
        >>> f.may_contain("k")  # not loaded: anything may be on disk
        True
        >>> f.mark_loaded(f.epoch)
        >>> f.may_contain("k"), f.add("k"), f.may_contain("k")
        (False, None, True)
    """

    __slots__ = ("_blooms", "_loaded", "_lock", "epoch", "usable")

    def __init__(self) -> None:
        self._blooms = [_Bloom(_FIRST_CAPACITY)]
        self._loaded = False
        self._lock = threading.Lock()
        self.usable = True
        self.epoch = 0

    def may_contain(self, key: str) -> bool:
        """False only when ``key`` is known absent from disk."""
        if not self._loaded:
            return True
        h = hash(key)
        for bloom in self._blooms:  # noqa: SIM110 - a generator costs ~0.5 us a miss
            if h in bloom:
                return True
        return False

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def nbytes(self) -> int:
        """Memory held by the filter's bits."""
        return sum(len(bloom.bits) for bloom in self._blooms)

    def add(self, key: object) -> None:
        with self._lock:
            self._add(hash(key))

    def _add(self, h: int) -> None:
        blooms = self._blooms
        bloom = blooms[-1]
        if bloom.count >= bloom.capacity:
            bloom = _Bloom(bloom.capacity * _GROWTH)
            self._blooms = [*blooms, bloom]
        bloom.add(h)

    def add_loaded(self, epoch: int, keys: list[object]) -> None:
        with self._lock:
            if epoch != self.epoch or not self.usable:
                return
            for key in keys:
                self._add(hash(key))

    def mark_loaded(self, epoch: int) -> None:
        if epoch == self.epoch and self.usable:
            self._loaded = True

    def give_up(self) -> None:
        """The load failed: every key may be present from now on."""
        with self._lock:
            self.usable = False
            self._loaded = False
            self._blooms = [_Bloom(_FIRST_CAPACITY)]

    def reset_empty(self) -> None:
        """The disk was cleared: nothing is on it (a load in progress is abandoned)."""
        with self._lock:
            self.epoch += 1
            self._blooms = [_Bloom(_FIRST_CAPACITY)]
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
