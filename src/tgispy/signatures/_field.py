"""Signature fields: ``InputField`` / ``OutputField`` and the :class:`FieldInfo` they return.

DSPy 2.4 built these on ``pydantic.Field`` and kept its own settings in ``json_schema_extra``
(``__dspy_field_type``, ``prefix``, ``desc``, ``format``). Code written for DSPy reads that dict
(``sig.fields["answer"].json_schema_extra["prefix"]``), so :class:`FieldInfo` keeps the same shape
without importing pydantic.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable
from typing import Any

from tgispy.errors import ConfigError

__all__ = [
    "DSPY_FIELD_ARG_NAMES",
    "FieldInfo",
    "FieldSettings",
    "InputField",
    "OutputField",
    "edit_count",
]

#: keyword arguments of ``InputField`` / ``OutputField`` that land in ``json_schema_extra``
DSPY_FIELD_ARG_NAMES = ("desc", "prefix", "format", "parser", "__dspy_field_type")


_edits = 0


def edit_count() -> int:
    """How many times any field's settings were changed in place (for caches of derived data)."""
    return _edits


def _edited() -> None:
    global _edits
    _edits += 1


class FieldSettings(dict[str, Any]):
    """``json_schema_extra``: a dict that tells :func:`edit_count` when it is changed in place.

    Prompt templates are cached per signature; editing a field's settings in place (as some
    DSPy code does) must invalidate them.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        _edited()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        _edited()
        super().__delitem__(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        _edited()
        super().update(*args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        _edited()
        return super().setdefault(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        _edited()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        _edited()
        return super().popitem()

    def clear(self) -> None:
        _edited()
        super().clear()

    def __ior__(self, other: Any) -> FieldSettings:  # type: ignore[override,misc]
        _edited()
        super().update(other)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (FieldSettings, (dict(self),))


class FieldInfo:
    """One field of a signature: its type annotation and DSPy settings.

    Attributes:
        annotation: the declared type (``str`` when the field was not annotated).
        json_schema_extra: DSPy's field settings: ``__dspy_field_type`` (``"input"`` or
            ``"output"``), ``prefix`` (e.g. ``"Question:"``), ``desc`` (e.g. ``"${question}"``),
            and optionally ``format`` (a callable rendering the value) and ``parser``.
        description: pydantic's ``description`` (copied to ``desc`` when no ``desc`` is given).
        kwargs: any other pydantic-style keyword arguments, kept for ``repr``.

    Example:
        >>> InputField(desc="a question").json_schema_extra["desc"]
        'a question'
    """

    __slots__ = ("_extra", "annotation", "description", "kwargs")

    def __init__(
        self,
        *,
        annotation: Any = None,
        json_schema_extra: dict[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.annotation = annotation
        self._extra = FieldSettings(json_schema_extra or {})
        self.description = description
        self.kwargs = kwargs

    @property
    def json_schema_extra(self) -> dict[str, Any]:
        return self._extra

    @json_schema_extra.setter
    def json_schema_extra(self, value: dict[str, Any]) -> None:
        _edited()
        self._extra = FieldSettings(value)

    @property
    def field_type(self) -> str | None:
        """``"input"``, ``"output"`` or ``None`` for a field not made by Input/OutputField."""
        value = self.json_schema_extra.get("__dspy_field_type")
        return value if isinstance(value, str) else None

    @property
    def prefix(self) -> str | None:
        value = self.json_schema_extra.get("prefix")
        return value if isinstance(value, str) else None

    @property
    def desc(self) -> str | None:
        value = self.json_schema_extra.get("desc")
        return value if isinstance(value, str) else None

    def copy(self, **updates: Any) -> FieldInfo:
        """A copy with ``json_schema_extra`` updated by ``updates``."""
        new = _copy.copy(self)
        new._extra = FieldSettings({**self._extra, **updates})
        new.kwargs = dict(self.kwargs)
        return new

    def _repr_args(self) -> str:
        annotation = getattr(self.annotation, "__name__", None) or repr(self.annotation)
        parts = [f"annotation={annotation}", "required=True"]
        if self.description is not None:
            parts.append(f"description={self.description!r}")
        parts.extend(f"{k}={v!r}" for k, v in self.kwargs.items())
        parts.append(f"json_schema_extra={self.json_schema_extra!r}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self._repr_args()

    def __repr__(self) -> str:
        return f"FieldInfo({self._repr_args().replace(' ', ', ')})"


def _make(
    field_type: str,
    *,
    prefix: str | None,
    desc: str | None,
    format: Callable[[Any], str] | None,
    parser: Callable[[str], Any] | None,
    description: str | None,
    kwargs: dict[str, Any],
) -> FieldInfo:
    for name, value in (("prefix", prefix), ("desc", desc), ("description", description)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name}= must be a string, got {type(value).__name__}")
    for name, fn in (("format", format), ("parser", parser)):
        if fn is not None and not callable(fn):
            raise ConfigError(f"{name}= must be a callable, got {type(fn).__name__}")
    extra: dict[str, Any] = {}
    if desc is not None:
        extra["desc"] = desc
    elif description is not None:
        extra["desc"] = description
    if prefix is not None:
        extra["prefix"] = prefix
    if format is not None:
        extra["format"] = format
    if parser is not None:
        extra["parser"] = parser
    extra["__dspy_field_type"] = field_type
    return FieldInfo(json_schema_extra=extra, description=description, **kwargs)


def InputField(  # DSPy's public name
    *,
    prefix: str | None = None,
    desc: str | None = None,
    format: Callable[[Any], str] | None = None,
    parser: Callable[[str], Any] | None = None,
    description: str | None = None,
    **kwargs: Any,
) -> Any:
    """Declare an input field of a signature.

    Args:
        prefix: the label shown in the prompt (default: inferred from the name, ``Question:``).
        desc: the placeholder shown in the format section (default: ``${name}``).
        format: a callable rendering the value into the prompt.
        parser: kept for DSPy compatibility (not used by the 2.4 template).
        description: pydantic-style alias of ``desc``.

    Returns:
        A :class:`FieldInfo` (typed ``Any`` so ``question: str = InputField()`` type-checks).

    Example:
        >>> from tgispy import Signature
        >>> class QA(Signature):
        ...     question = InputField(desc="a trivia question")
        ...     answer = OutputField()
        >>> QA.fields["question"].json_schema_extra["prefix"]
        'Question:'
    """
    return _make(
        "input",
        prefix=prefix,
        desc=desc,
        format=format,
        parser=parser,
        description=description,
        kwargs=kwargs,
    )


def OutputField(  # DSPy's public name
    *,
    prefix: str | None = None,
    desc: str | None = None,
    format: Callable[[Any], str] | None = None,
    parser: Callable[[str], Any] | None = None,
    description: str | None = None,
    **kwargs: Any,
) -> Any:
    """Declare an output field of a signature (arguments as :func:`InputField`).

    Example:
        >>> OutputField(desc="often between 1 and 5 words").json_schema_extra["__dspy_field_type"]
        'output'
    """
    return _make(
        "output",
        prefix=prefix,
        desc=desc,
        format=format,
        parser=parser,
        description=description,
        kwargs=kwargs,
    )
