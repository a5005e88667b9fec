"""DSPy 2.4's ``dsp.utils`` helpers that programs import: ``dotdict``, ``deduplicate``, ...

Pure functions with DSPy 2.4.17's behaviour (``dsp/utils/utils.py``).
"""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = [
    "batch",
    "deduplicate",
    "dotdict",
    "dotdict_lax",
    "flatten",
    "groupby_first_item",
    "grouper",
    "zip_first",
    "zipstar",
]

T = TypeVar("T")


class dotdict(dict[str, Any]):
    """A dict whose keys are also attributes (DSPy 2.4's ``dsp.utils.dotdict``).

    Example:
        >>> d = dotdict(long_text="Paris is in France.")
        >>> d.long_text
        'Paris is in France.'
    """

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{key}'"
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("__") and key.endswith("__"):
            super().__setattr__(key, value)
        else:
            self[key] = value

    def __delattr__(self, key: str) -> None:
        if key.startswith("__") and key.endswith("__"):
            super().__delattr__(key)
        else:
            del self[key]

    def __deepcopy__(self, memo: dict[int, Any]) -> dotdict:
        return dotdict(copy.deepcopy(dict(self), memo))


class dotdict_lax(dict[str, Any]):
    """A :class:`dotdict` whose missing attributes are ``None``.

    Example:
        >>> dotdict_lax(a=1).b is None
        True
    """

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        return self.get(key)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        del self[key]


def deduplicate(seq: Iterable[T]) -> list[T]:
    """The items of ``seq`` without repeats, first occurrence kept, order preserved.

    Example:
        >>> deduplicate(["a", "b", "a"])
        ['a', 'b']
    """
    seen: set[Any] = set()
    out: list[T] = []
    for item in seq:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def batch(group: Sequence[T], bsize: int, provide_offset: bool = False) -> Iterator[Any]:
    """Slices of ``group`` of size ``bsize`` (with their offset when ``provide_offset``).

    Example:
        >>> list(batch([1, 2, 3], 2))
        [[1, 2], [3]]
    """
    offset = 0
    while offset < len(group):
        chunk = group[offset : offset + bsize]
        yield (offset, chunk) if provide_offset else chunk
        offset += len(chunk)


def flatten(lists: Iterable[Iterable[T]]) -> list[T]:
    """One list of the items of ``lists``.

    Example:
        >>> flatten([[1], [2, 3]])
        [1, 2, 3]
    """
    return [item for sub in lists for item in sub]


def zipstar(rows: Sequence[Sequence[Any]], lazy: bool = False) -> Any:
    """Transpose: ``zipstar([(a, b), (c, d)]) == [[a, c], [b, d]]``.

    Example:
        >>> zipstar([(1, 2), (3, 4)])
        [[1, 3], [2, 4]]
    """
    if len(rows) == 0:
        return rows
    width = len(rows[0])
    if width < 100:
        return [[row[idx] for row in rows] for idx in range(width)]
    zipped = zip(*rows, strict=False)
    return zipped if lazy else list(zipped)


def zip_first(first: Sequence[Any], second: Iterable[Any]) -> list[tuple[Any, Any]]:
    """``list(zip(first, second))``, checking ``second`` is not shorter than a list ``first``.

    Example:
        >>> zip_first([1, 2], "ab")
        [(1, 'a'), (2, 'b')]
    """
    length = len(first) if isinstance(first, list | tuple) else None
    out = list(zip(first, second, strict=False))
    if length not in (None, len(out)):
        raise ValueError("zip_first() failure: length differs!")
    return out


def groupby_first_item(rows: Iterable[Sequence[Any]]) -> dict[Any, list[Any]]:
    """Group rows by their first item; a row of two gives its second item, else the rest.

    Example:
        >>> dict(groupby_first_item([(1, "a"), (1, "b"), (2, "c")]))
        {1: ['a', 'b'], 2: ['c']}
    """
    groups: defaultdict[Any, list[Any]] = defaultdict(list)
    for first, *rest in rows:
        groups[first].append(rest[0] if len(rest) == 1 else rest)
    return groups


def grouper(iterable: Iterable[T], n: int, fillvalue: Any = None) -> Iterator[tuple[Any, ...]]:
    """Fixed-length chunks: ``grouper('ABCDEFG', 3, 'x') -> ABC DEF Gxx``.

    Example:
        >>> ["".join(g) for g in grouper("ABCDEFG", 3, "x")]
        ['ABC', 'DEF', 'Gxx']
    """
    args = [iter(iterable)] * n
    return itertools.zip_longest(*args, fillvalue=fillvalue)
