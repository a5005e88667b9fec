"""Signatures: string and class forms, DSPy 2.4's class-level API, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.signatures import FieldInfo, SignatureMeta, ensure_signature, infer_prefix


def extra(sig: Any, name: str) -> dict[str, Any]:
    return dict(sig.fields[name].json_schema_extra)


def test_string_signature() -> None:
    sig = dspy.Signature("context, question -> answer")
    assert isinstance(sig, SignatureMeta) and issubclass(sig, dspy.Signature)
    assert sig.__name__ == "StringSignature"
    assert sig.signature == "context, question -> answer"
    assert list(sig.input_fields) == ["context", "question"]
    assert list(sig.output_fields) == ["answer"]
    assert (
        sig.instructions == "Given the fields `context`, `question`, produce the fields `answer`."
    )
    assert extra(sig, "question") == {
        "__dspy_field_type": "input",
        "prefix": "Question:",
        "desc": "${question}",
    }


def test_string_signature_with_instructions_and_types() -> None:
    sig = dspy.Signature("question: str, k: int, tags: list[str] -> answer", "Be brief.")
    assert sig.instructions == "Be brief."
    assert sig.fields["k"].annotation is int
    assert sig.fields["tags"].annotation == list[str]
    assert sig.fields["answer"].annotation is str


def test_empty_instructions_mean_the_default() -> None:
    assert (
        dspy.Signature("a -> b", "").instructions == "Given the fields `a`, produce the fields `b`."
    )


def test_class_signature() -> None:
    class QA(dspy.Signature):
        """
        Answer questions with short factoid answers.
            Keep it short.
        """

        question = dspy.InputField()
        answer: str = dspy.OutputField(desc="often between 1 and 5 words", prefix="Final Answer:")

    assert QA.__name__ == "QA"
    assert QA.instructions == "Answer questions with short factoid answers.\n    Keep it short."
    assert extra(QA, "answer")["prefix"] == "Final Answer:"
    assert extra(QA, "answer")["desc"] == "often between 1 and 5 words"
    assert not hasattr(QA, "question")  # fields are not class attributes (pydantic behaviour)


def test_annotated_fields_come_before_unannotated_ones_as_in_dspy() -> None:
    class Mixed(dspy.Signature):
        a = dspy.InputField()
        b: str = dspy.InputField()
        c = dspy.OutputField()
        d: int = dspy.OutputField()

    assert list(Mixed.fields) == ["b", "a", "d", "c"]
    assert list(Mixed.model_fields) == ["b", "d", "a", "c"]


def test_docstring_inheritance() -> None:
    class Base(dspy.Signature):
        """Base instructions."""

        a = dspy.InputField()
        b = dspy.OutputField()

    class Child(Base):
        c = dspy.OutputField()

    class Empty(dspy.Signature):
        ""

        a = dspy.InputField()
        b = dspy.OutputField()

    class EmptyChild(Empty):
        c = dspy.OutputField()

    assert Child.instructions == "Base instructions."
    assert list(Child.fields) == ["a", "b", "c"]
    assert Empty.instructions == ""
    assert EmptyChild.instructions == "Given the fields `a`, produce the fields `b`, `c`."


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("question", "Question"),
        ("input1", "Input 1"),
        ("questionText", "Question Text"),
        ("search_query", "Search Query"),
        ("someHTTPValue", "Some HTTP Value"),
        ("HTTPCode", "HTTP Code"),
        ("step2go", "Step 2 Go"),
    ],
)
def test_infer_prefix(name: str, prefix: str) -> None:
    assert infer_prefix(name) == prefix


def test_with_instructions_and_with_updated_fields_return_new_signatures() -> None:
    sig = dspy.Signature("question -> answer")
    updated = sig.with_instructions("New.").with_updated_fields("answer", prefix="A:", desc="d")
    assert updated.instructions == "New."
    assert extra(updated, "answer")["prefix"] == "A:" and extra(updated, "answer")["desc"] == "d"
    assert extra(sig, "answer")["prefix"] == "Answer:"
    assert sig.instructions.startswith("Given")
    typed = sig.with_updated_fields("answer", type_=int)
    assert typed.fields["answer"].annotation is int
    with pytest.raises(ConfigError, match="no field 'nope'"):
        sig.with_updated_fields("nope", prefix="x")


def test_insert_append_prepend() -> None:
    sig = dspy.Signature("a, b -> c, d")
    assert sig.prepend("z", dspy.InputField()).signature == "z, a, b -> c, d"
    assert sig.append("z", dspy.InputField()).signature == "a, b, z -> c, d"
    assert sig.append("z", dspy.OutputField()).signature == "a, b -> c, d, z"
    assert sig.insert(-2, "z", dspy.OutputField()).signature == "a, b -> c, z, d"
    assert sig.insert(1, "z", dspy.OutputField(), type_=int).fields["z"].annotation is int
    with pytest.raises(ConfigError, match="Invalid index"):
        sig.insert(5, "z", dspy.InputField())
    with pytest.raises(ConfigError, match="InputField"):
        sig.insert(0, "z", "not a field")  # type: ignore[arg-type]


def test_equals() -> None:
    sig = dspy.Signature("question -> answer")
    assert sig.equals(dspy.Signature("question -> answer"))
    assert not sig.equals(sig.with_instructions("other"))
    assert not sig.equals(dspy.Signature("question -> reply"))
    assert not sig.equals("question -> answer")


def test_from_a_dict_of_fields() -> None:
    sig = dspy.Signature({"x": (int, dspy.InputField()), "y": dspy.OutputField(desc="why")})
    assert sig.signature == "x -> y"
    assert sig.fields["x"].annotation is int
    assert sig.fields["y"].annotation is str


def test_repr_names_fields_and_instructions() -> None:
    text = repr(dspy.Signature("question -> answer"))
    assert text.startswith("StringSignature(question -> answer\n    instructions='Given the fields")
    assert "question = Field(annotation=str required=True json_schema_extra=" in text


def test_ensure_signature() -> None:
    sig = dspy.Signature("a -> b")
    assert ensure_signature(sig) is sig
    assert ensure_signature(None) is None
    assert ensure_signature("a -> b", "Do it.").instructions == "Do it."
    with pytest.raises(ConfigError, match="instructions"):
        ensure_signature(sig, "x")
    with pytest.raises(ConfigError, match="question -> answer"):
        ensure_signature(42)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty signature"),
        ("   ", "empty signature"),
        ("question answer", "exactly one '->'"),
        ("a -> b -> c", "exactly one '->'"),
        ("question ->", "no output fields"),
        ("a b -> c", "could not parse"),
        ("a=1 -> b", "only names and type annotations"),
        ("question -> question", "both sides"),
        ("a: Foo -> b", "Unknown type 'Foo'"),
    ],
)
def test_bad_string_signatures(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dspy.Signature(text)


def test_fields_must_be_declared_with_input_or_output_field() -> None:
    with pytest.raises(ConfigError, match="'answer' in 'Bad' must be declared with InputField"):

        class Bad(dspy.Signature):
            question = dspy.InputField()
            answer: str

    with pytest.raises(ConfigError, match="must be declared"):

        class AlsoBad(dspy.Signature):
            answer: str = "default"

    with pytest.raises(ConfigError, match="must not start with '_'"):

        class Private(dspy.Signature):
            _hidden = dspy.InputField()


def test_signature_classes_are_not_instantiated() -> None:
    class QA(dspy.Signature):
        question = dspy.InputField()
        answer = dspy.OutputField()

    with pytest.raises(ConfigError, match=r"dspy.Predict\(QA\)"):
        QA()


def test_field_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="prefix"):
        dspy.InputField(prefix=3)
    with pytest.raises(ConfigError, match="format"):
        dspy.OutputField(format="not callable")
    field = dspy.InputField(description="pydantic style")
    assert isinstance(field, FieldInfo) and field.json_schema_extra["desc"] == "pydantic style"
    assert "json_schema_extra" in repr(field)
