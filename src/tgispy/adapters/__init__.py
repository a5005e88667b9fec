"""Adapters: pure translation between a signature and an LM's text (prompt in, fields out).

:class:`TemplateAdapter` is DSPy 2.4's text template (the default of ``Predict`` for signatures
whose outputs are all ``str``). :class:`JSONAdapter` asks for typed outputs as JSON constrained by
TGI grammars (the default for signatures with typed outputs); :class:`ChatAdapter` does the same
over TGI's chat API. An adapter is
anything with the two methods of :class:`Adapter`; it never calls an LM itself, so the same
adapter serves the sync and async paths and can be unit-tested on strings alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from tgispy._public import publish as _publish
from tgispy.adapters._json import ChatAdapter, Invalid, JSONAdapter, TypedPlan
from tgispy.adapters._schema import OutputSpec, SingleField, output_spec, schema_sketch
from tgispy.adapters._template import (
    Template,
    TemplateField,
    format_answers,
    passages2text,
    template_for,
)

__all__ = [
    "Adapter",
    "ChatAdapter",
    "Invalid",
    "JSONAdapter",
    "OutputSpec",
    "SingleField",
    "Template",
    "TemplateAdapter",
    "TemplateField",
    "TypedAdapter",
    "TypedPlan",
    "format_answers",
    "output_spec",
    "passages2text",
    "schema_sketch",
    "template_for",
]


@runtime_checkable
class Adapter(Protocol):
    """What ``Predict`` needs from an adapter."""

    def format(
        self, signature: Any, demos: Sequence[Mapping[str, Any]], example: Mapping[str, Any]
    ) -> str:
        """The prompt for ``example`` (inputs, maybe partial outputs) with ``demos``."""
        ...

    def parse(self, signature: Any, example: Mapping[str, Any], completion: str) -> dict[str, Any]:
        """``example`` plus the fields parsed from ``completion``."""
        ...


@runtime_checkable
class TypedAdapter(Adapter, Protocol):
    """An adapter that asks for typed outputs and owns their grammar and validation
    (:class:`JSONAdapter`, :class:`ChatAdapter`, or a subclass overriding ``format`` /
    ``parse``): ``Predict`` runs it through the typed loop (grammar, one retry)."""

    chat: bool | None
    use_grammar: bool

    def plan(self, signature: Any, *, chat: bool | None = None) -> TypedPlan:
        """The signature's prompt, messages, grammar and validation."""
        ...

    def format_messages(
        self, signature: Any, demos: Sequence[Mapping[str, Any]], example: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The chat messages for ``example``."""
        ...

    def check(
        self, signature: Any, example: Mapping[str, Any], completion: str, *, chat: bool = False
    ) -> dict[str, Any] | Invalid:
        """The typed outputs of ``completion``, or why it does not parse."""
        ...


class TemplateAdapter:
    """DSPy 2.4's prompt format (``dsp.Template``), byte for byte.

    Example:
        >>> from tgispy import Signature
        >>> adapter = TemplateAdapter()
        >>> prompt = adapter.format(Signature("question -> answer"), [], {"question": "2+2?"})
        >>> prompt.endswith("Question: 2+2?\\nAnswer:")
        True
        >>> adapter.parse(Signature("question -> answer"), {"question": "2+2?"}, " 4")["answer"]
        '4'
    """

    def format(
        self, signature: Any, demos: Sequence[Mapping[str, Any]], example: Mapping[str, Any]
    ) -> str:
        return template_for(signature).format(demos, example)

    def parse(self, signature: Any, example: Mapping[str, Any], completion: str) -> dict[str, Any]:
        return template_for(signature).extract(example, completion)

    def __repr__(self) -> str:
        return "TemplateAdapter()"


_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
