"""Type annotations of signature fields: resolving them and telling typed outputs apart.

DSPy 2.4 signatures annotate every field (``str`` when nothing is written) but never validated
values. tgispy keeps that for ``str`` fields and treats any other output annotation (``int``,
``list[str]``, ``Literal[...]``, an ``Enum``, a pydantic model, ``Optional[...]``) as a *typed*
output: parsed and validated by the JSON adapter. Pure functions, no pydantic import.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Mapping
from typing import Any

from tgispy.errors import ConfigError

__all__ = [
    "has_typed_outputs",
    "is_typed",
    "output_annotations",
    "resolve_annotation",
]


def resolve_annotation(
    annotation: Any, module: str | None = None, localns: Mapping[str, Any] | None = None
) -> Any:
    """Evaluate a string annotation (``from __future__ import annotations``); else return it.

    A name that cannot be resolved yet (a forward reference) leaves the string as it is; it is
    resolved again when a typed adapter needs the type.

    Example:
        >>> resolve_annotation("list[int]")
        list[int]
    """
    if not isinstance(annotation, str):
        return annotation
    globalns = dict(vars(sys.modules[module])) if module in sys.modules else {}
    holder = type("_Holder", (), {"__annotations__": {"value": annotation}})
    try:
        hints = typing.get_type_hints(
            holder, globalns=globalns, localns=dict(localns or {}), include_extras=True
        )
    except Exception:  # any failure to evaluate means "not resolvable yet"
        return annotation
    return hints["value"]


def is_typed(annotation: Any) -> bool:
    """Whether an output annotation asks for a parsed value (anything but ``str`` / ``Any``).

    Example:
        >>> is_typed(str), is_typed(int), is_typed(list[str])
        (False, True, True)
    """
    return annotation not in (str, "str", None, Any)


def has_typed_outputs(signature: Any) -> bool:
    """Whether any output field of ``signature`` is typed (see :func:`is_typed`).

    Example:
        >>> from tgispy import Signature
        >>> has_typed_outputs(Signature("question -> answer")), has_typed_outputs(
        ...     Signature("question -> answer: int"))
        (False, True)
    """
    return any(is_typed(field.annotation) for field in signature._output_fields.values())


def output_annotations(signature: Any) -> dict[str, Any]:
    """The resolved annotation of every output field.

    Raises:
        ConfigError: a string annotation (``from __future__ import annotations``) names a type
            that cannot be found from the signature's module.
    """
    module = getattr(signature, "__module__", None)
    out: dict[str, Any] = {}
    for key, field in signature._output_fields.items():
        annotation = resolve_annotation(field.annotation, module)
        if isinstance(annotation, str):
            raise ConfigError(
                f"cannot resolve the type {annotation!r} of output field {key!r} of "
                f"{signature.__name__}; define it at module level (or before the signature) "
                "so the annotation can be evaluated"
            )
        out[key] = annotation
    return out
