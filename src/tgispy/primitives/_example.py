"""``Example``: a record of named values (a training example, a demo, a set of inputs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["Example"]


class Example:
    """A dict-like record with attribute access, as in DSPy 2.4.

    Keys starting with ``dspy_`` are internal: hidden from ``len``, ``keys``, ``values``, ``items``
    and ``repr``. :meth:`with_inputs` marks which keys are inputs; :meth:`inputs` and
    :meth:`labels` split the record accordingly.

    Example:
        >>> ex = Example(question="What is 2+2?", answer="4").with_inputs("question")
        >>> ex.question, ex.labels().answer
        ('What is 2+2?', '4')
    """

    _store: dict[str, Any]
    _demos: list[Any]
    _input_keys: set[str] | None

    def __init__(self, base: Example | dict[str, Any] | None = None, **kwargs: Any) -> None:
        if base and isinstance(base, type(self)):
            store = base._store.copy()
        elif base and isinstance(base, dict):
            store = base.copy()
        else:
            store = {}
        store.update(kwargs)
        # Straight into __dict__: __setattr__ would route these through the record check.
        attrs = self.__dict__
        attrs["_store"] = store
        attrs["_demos"] = []
        attrs["_input_keys"] = None

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        try:
            store = object.__getattribute__(self, "_store")
        except AttributeError:
            raise AttributeError(key) from None
        if key in store:
            return store[key]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}'")

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or key in _class_attrs(type(self)):
            object.__setattr__(self, key, value)
        else:
            self._store[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._store[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store[key] = value

    def __delitem__(self, key: str) -> None:
        del self._store[key]

    def __contains__(self, key: object) -> bool:
        return key in self._store

    def __len__(self) -> int:
        return len([k for k in self._store if not k.startswith("dspy_")])

    def __repr__(self) -> str:
        d = {k: v for k, v in self._store.items() if not k.startswith("dspy_")}
        return f"Example({d}) (input_keys={self._input_keys})"

    def __str__(self) -> str:
        return self.__repr__()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Example) and self._store == other._store

    def __hash__(self) -> int:
        return hash(tuple(self._store.items()))

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._store))

    def keys(self, include_dspy: bool = False) -> list[str]:
        return [k for k in self._store if include_dspy or not k.startswith("dspy_")]

    def values(self, include_dspy: bool = False) -> list[Any]:
        return [v for k, v in self._store.items() if include_dspy or not k.startswith("dspy_")]

    def items(self, include_dspy: bool = False) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self._store.items() if include_dspy or not k.startswith("dspy_")]

    def get(self, key: str, default: Any = None) -> Any:
        return self._store.get(key, default)

    def with_inputs(self, *keys: str) -> Example:
        """A copy whose input keys are ``keys``."""
        copied = self.copy()
        copied._input_keys = set(keys)
        return copied

    def inputs(self) -> Example:
        """The input part (raises ``ValueError`` until :meth:`with_inputs` was called)."""
        if self._input_keys is None:
            raise ValueError(
                "Inputs have not been set for this example. "
                "Use `example.with_inputs()` to set them."
            )
        d = {key: self._store[key] for key in self._store if key in self._input_keys}
        new = type(self)(base=d)
        new._input_keys = self._input_keys
        return new

    def labels(self) -> Example:
        """Everything that is not an input."""
        input_keys = self.inputs().keys()
        d = {key: self._store[key] for key in self._store if key not in input_keys}
        return type(self)(d)

    def copy(self, **kwargs: Any) -> Example:
        """A copy with ``kwargs`` set (input keys are not copied, as in DSPy 2.4)."""
        return type(self)(base=self, **kwargs)

    def without(self, *keys: str) -> Example:
        """A copy without ``keys``."""
        copied = self.copy()
        for key in keys:
            del copied[key]
        return copied

    def toDict(self) -> dict[str, Any]:  # DSPy's public name
        """A shallow copy of the record as a dict."""
        return self._store.copy()


# Names that are real attributes of a class, not record keys (DSPy 2.4: `key in dir(cls)`).
_ATTR_CACHE: dict[type, frozenset[str]] = {}


def _class_attrs(cls: type) -> frozenset[str]:
    attrs = _ATTR_CACHE.get(cls)
    if attrs is None:
        attrs = _ATTR_CACHE[cls] = frozenset(dir(cls))
    return attrs
