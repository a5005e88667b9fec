"""Typed fields on signatures: string-signature types, string annotations, typed-ness."""

from __future__ import annotations

from typing import Any, Literal, Optional

import pydantic
import pytest
from tests.typed.types_ import Arith, Color, Extract, Person, Sentiment

import tgispy as dspy
from tgispy.adapters import output_spec
from tgispy.errors import ConfigError
from tgispy.signatures import has_typed_outputs, is_typed
from tgispy.signatures._types import output_annotations, resolve_annotation


def test_string_signatures_accept_literal_and_union_types() -> None:
    sig = dspy.Signature(
        "text -> label: Literal['a', 'b'], n: int | None, k: Optional[list[int]], "
        "m: dict[str, float], flag: Literal[True, 1, None]"
    )
    assert sig.fields["label"].annotation == Literal["a", "b"]
    assert sig.fields["n"].annotation == Optional[int]
    assert sig.fields["k"].annotation == Optional[list[int]]
    assert sig.fields["m"].annotation == dict[str, float]
    assert sig.fields["flag"].annotation == Literal[True, 1, None]


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("a -> b: Literal[x]", "Literal values must be strings, integers, booleans or None"),
        ("a -> b: Literal[1.5]", "Literal values must be"),
        ("a -> b: int | Foo", "Unknown type 'Foo'"),
    ],
)
def test_bad_string_signature_types(signature: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dspy.Signature(signature)


def test_string_annotations_are_resolved_at_class_creation() -> None:
    # This module uses `from __future__ import annotations`: every annotation is a string.
    assert Arith.fields["answer"].annotation is int
    assert Extract.fields["person"].annotation is Person
    assert Sentiment.fields["label"].annotation == Literal["positive", "negative", "neutral"]


def test_types_defined_inside_a_function_resolve_through_its_locals() -> None:
    class Local(pydantic.BaseModel):
        x: int

    class Sig(dspy.Signature):
        q: str = dspy.InputField()
        out: Local = dspy.OutputField()
        many: list[Local] = dspy.OutputField()

    assert Sig.fields["out"].annotation is Local
    assert Sig.fields["many"].annotation == list[Local]
    assert output_spec(Sig).validate({"out": {"x": 1}, "many": []})["out"] == Local(x=1)


def test_forward_references_resolve_later_or_fail_clearly() -> None:
    class Later(dspy.Signature):
        q: str = dspy.InputField()
        out: NotDefinedAnywhere = dspy.OutputField()  # type: ignore[name-defined]  # noqa: F821

    assert Later.fields["out"].annotation == "NotDefinedAnywhere"
    assert has_typed_outputs(Later)
    with pytest.raises(ConfigError, match="cannot resolve the type 'NotDefinedAnywhere'"):
        output_annotations(Later)


def test_resolve_annotation() -> None:
    assert resolve_annotation(int) is int
    assert resolve_annotation("list[int]") == list[int]
    assert resolve_annotation("Color", __name__) is Color
    assert resolve_annotation("Mine", None, {"Mine": Person}) is Person
    assert resolve_annotation("Nope") == "Nope"


@pytest.mark.parametrize(
    ("annotation", "typed"),
    [(str, False), ("str", False), (None, False), (Any, False), (int, True), (list[str], True)],
)
def test_is_typed(annotation: Any, typed: bool) -> None:
    assert is_typed(annotation) is typed


def test_has_typed_outputs_looks_at_outputs_only() -> None:
    assert not has_typed_outputs(dspy.Signature("question -> answer"))
    assert not has_typed_outputs(dspy.Signature("question, k: int -> answer: str"))
    assert has_typed_outputs(dspy.Signature("question -> answer, score: float"))
    assert has_typed_outputs(Sentiment)
    # a ChainOfThought's rationale is a str field; the typed answer still counts
    assert has_typed_outputs(dspy.ChainOfThought(Arith).extended_signature)
