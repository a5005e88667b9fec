"""``Prediction`` (a module's output) and ``Completions`` (all of its sampled completions)."""

from __future__ import annotations

from collections.abc import ItemsView, Mapping, Sequence
from typing import Any

from tgispy.primitives._example import Example

__all__ = ["Completions", "Prediction"]


class Prediction(Example):
    """The output of a module: the fields of the first completion, plus :attr:`completions`.

    Example:
        >>> pred = Prediction.from_completions([{"answer": "4"}, {"answer": "four"}])
        >>> pred.answer, pred.completions.answer
        ('4', ['4', 'four'])
    """

    _completions: Completions | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # As in DSPy 2.4, a prediction has no demos and no input keys.
        attrs = self.__dict__
        del attrs["_demos"]
        del attrs["_input_keys"]
        attrs["_completions"] = None

    @classmethod
    def from_completions(
        cls,
        list_or_dict: Sequence[Mapping[str, Any]] | Mapping[str, list[Any]],
        signature: Any = None,
    ) -> Prediction:
        """A prediction whose fields are those of the first of ``list_or_dict``'s completions."""
        obj = cls()
        completions = Completions(list_or_dict, signature=signature)
        attrs = obj.__dict__
        attrs["_completions"] = completions
        attrs["_store"] = {k: v[0] for k, v in completions._completions.items()}
        return obj

    def __repr__(self) -> str:
        store_repr = ",\n    ".join(f"{k}={v!r}" for k, v in self._store.items())
        if self._completions is None or len(self._completions) == 1:
            return f"Prediction(\n    {store_repr}\n)"
        omitted = len(self._completions) - 1
        return (
            f"Prediction(\n    {store_repr},\n    completions=Completions(...)\n) "
            f"({omitted} completions omitted)"
        )

    def __str__(self) -> str:
        return self.__repr__()

    @property
    def completions(self) -> Completions | None:
        return self._completions


class Completions:
    """Every completion of a call, field by field: ``completions.answer`` is a list.

    Indexing with an int gives one completion as a :class:`Prediction`.

    Example:
        >>> c = Completions([{"answer": "4"}, {"answer": "four"}])
        >>> len(c), c[1].answer, c["answer"]
        (2, 'four', ['4', 'four'])
    """

    def __init__(
        self,
        list_or_dict: Sequence[Mapping[str, Any]] | Mapping[str, list[Any]],
        signature: Any = None,
    ) -> None:
        self.signature = signature
        kwargs: dict[str, list[Any]]
        if isinstance(list_or_dict, Mapping):
            kwargs = dict(list_or_dict)
        else:
            kwargs = {}
            for arg in list_or_dict:
                for k, v in arg.items():
                    kwargs.setdefault(k, []).append(v)
        if not all(isinstance(v, list) for v in kwargs.values()):
            raise ValueError("All values must be lists")
        if kwargs:
            length = len(next(iter(kwargs.values())))
            if not all(len(v) == length for v in kwargs.values()):
                raise ValueError("All lists must have the same length")
        self._completions = kwargs

    def items(self) -> ItemsView[str, list[Any]]:
        return self._completions.items()

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            if key < 0 or key >= len(self):
                raise IndexError("Index out of range")
            return Prediction(**{k: v[key] for k, v in self._completions.items()})
        return self._completions[key]

    def __getattr__(self, name: str) -> list[Any]:
        if name.startswith("__") or name == "_completions":
            raise AttributeError(name)
        completions = self.__dict__.get("_completions", {})
        if name in completions:
            return completions[name]  # type: ignore[no-any-return]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __len__(self) -> int:
        if not self._completions:
            return 0
        return len(next(iter(self._completions.values())))

    def __contains__(self, key: object) -> bool:
        return key in self._completions

    def __repr__(self) -> str:
        items_repr = ",\n    ".join(f"{k}={v!r}" for k, v in self._completions.items())
        return f"Completions(\n    {items_repr}\n)"

    def __str__(self) -> str:
        return self.__repr__()
