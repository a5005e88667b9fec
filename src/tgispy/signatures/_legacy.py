"""DSPy 2.4's legacy field helpers: ``OldField``, ``new_to_old_field``, ``move_kwargs``, ...

Kept for code that builds 2.3-style templates or reads fields the old way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tgispy.signatures._field import DSPY_FIELD_ARG_NAMES, FieldInfo

if TYPE_CHECKING:
    from tgispy.adapters._template import Template

__all__ = [
    "OldField",
    "OldInputField",
    "OldOutputField",
    "move_kwargs",
    "new_to_old_field",
    "replace_signature",
    "signature_to_template",
    "update_signatures",
]

_SWAPPED = ("__doc__", "_fields", "_input_fields", "_output_fields")


def move_kwargs(**kwargs: Any) -> dict[str, Any]:
    """Split field keyword arguments into pydantic's and DSPy's ``json_schema_extra``.

    Example:
        >>> move_kwargs(desc="d", description="x")
        {'description': 'x', 'json_schema_extra': {'desc': 'd'}}
    """
    pydantic_kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in DSPY_FIELD_ARG_NAMES:
            extra[key] = value
        else:
            pydantic_kwargs[key] = value
    if "description" in kwargs and "desc" not in extra:
        extra["desc"] = kwargs["description"]
    pydantic_kwargs["json_schema_extra"] = extra
    return pydantic_kwargs


class OldField:
    """A 2.3-style field: ``prefix`` and ``desc`` inferred when omitted (see :meth:`finalize`).

    Example:
        >>> field = OldInputField()
        >>> field.finalize("question", "Question")
        >>> field.prefix, field.desc
        ('Question:', '${question}')
    """

    def __init__(
        self,
        *,
        prefix: str | None = None,
        desc: str | None = None,
        input: bool,
        format: Callable[[Any], str] | None = None,
    ) -> None:
        self.prefix = prefix
        self.desc = desc
        self.format = format

    def finalize(self, key: str, inferred_prefix: str) -> None:
        """Fill in the prefix and description that were not given."""
        if self.prefix is None:
            self.prefix = inferred_prefix + ":"
        if self.desc is None:
            self.desc = f"${{{key}}}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix}, desc={self.desc})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OldField) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


class OldInputField(OldField):
    """A 2.3-style input field."""

    def __init__(
        self,
        *,
        prefix: str | None = None,
        desc: str | None = None,
        format: Callable[[Any], str] | None = None,
    ) -> None:
        super().__init__(prefix=prefix, desc=desc, input=True, format=format)


class OldOutputField(OldField):
    """A 2.3-style output field."""

    def __init__(
        self,
        *,
        prefix: str | None = None,
        desc: str | None = None,
        format: Callable[[Any], str] | None = None,
    ) -> None:
        super().__init__(prefix=prefix, desc=desc, input=False, format=format)


def new_to_old_field(field: FieldInfo) -> OldField:
    """The :class:`OldInputField` / :class:`OldOutputField` of a signature field.

    Example:
        >>> from tgispy import Signature
        >>> new_to_old_field(Signature("question -> answer").fields["answer"])
        OldOutputField(prefix=Answer:, desc=${answer})
    """
    extra = field.json_schema_extra
    cls = OldInputField if extra["__dspy_field_type"] == "input" else OldOutputField
    return cls(prefix=extra["prefix"], desc=extra["desc"], format=extra.get("format"))


def signature_to_template(signature: Any, adapter: Any = None) -> Template:
    """The DSPy 2.4 prompt template of ``signature`` (``format(demos, example)``, ``extract``).

    Example:
        >>> from tgispy import Signature
        >>> signature_to_template(Signature("question -> answer")).keys
        ('question', 'answer')
    """
    if adapter is not None:
        fields = {name: new_to_old_field(f) for name, f in signature.fields.items()}
        return adapter(signature.instructions, **fields)  # type: ignore[no-any-return]
    from tgispy.adapters._template import template_for  # adapters import signatures

    return template_for(signature)


@contextlib.contextmanager
def replace_signature(
    signature: Any, new_signature: Any, validate_new_signature: bool = True
) -> Iterator[None]:
    """Give ``signature`` the instructions and fields of ``new_signature`` inside the block.

    DSPy 2.4's ``Signature.replace``: every predictor built on ``signature`` sends the new
    prompt until the block ends.

    Raises:
        ValueError: a field of ``signature`` is missing from ``new_signature`` (unless
            ``validate_new_signature=False``).

    Example:
        >>> from tgispy import Signature
        >>> qa = Signature("question -> answer")
        >>> with replace_signature(qa, qa.with_instructions("Be brief.")):
        ...     qa.instructions
        'Be brief.'
        >>> qa.instructions
        'Given the fields `question`, produce the fields `answer`.'
    """
    if validate_new_signature:
        for name in signature.fields:
            if name not in new_signature.fields:
                raise ValueError(
                    f"Field '{name}' is missing from the updated signature '{new_signature}."
                )
    saved = {name: signature.__dict__[name] for name in _SWAPPED if name in signature.__dict__}
    for name in _SWAPPED:
        type.__setattr__(signature, name, getattr(new_signature, name))
    try:
        yield
    finally:
        for name in _SWAPPED:
            if name in saved:
                type.__setattr__(signature, name, saved[name])
            else:
                type.__delattr__(signature, name)


@contextlib.contextmanager
def update_signatures(
    signature_map: Mapping[Any, Any], validate_new_signature: bool = True
) -> Iterator[None]:
    """Replace several signatures with updated versions inside the block (DSPy 2.4).

    Example:
        >>> from tgispy import Signature
        >>> qa = Signature("question -> answer")
        >>> with update_signatures({qa: qa.with_instructions("Be brief.")}):
        ...     qa.instructions
        'Be brief.'
    """
    with contextlib.ExitStack() as stack:
        for old, new in signature_map.items():
            stack.enter_context(replace_signature(old, new, validate_new_signature))
        yield
