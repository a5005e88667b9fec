"""OutputSpec: JSON schema, sketch, regex form and validation of typed outputs (pure)."""

from __future__ import annotations

import re
from typing import Any, Literal

import jsonschema
import pytest
from tests.typed.types_ import Color, Everything, Node, Person, Priority, Titled

import tgispy as dspy
from tgispy.adapters import output_spec, schema_sketch
from tgispy.adapters._schema import describe_errors, extract_json
from tgispy.errors import ConfigError, ParseError

VALID_EVERYTHING: dict[str, Any] = {
    "count": 3,
    "ratio": 0.5,
    "ok": True,
    "note": "fine",
    "tags": ["x", "y"],
    "scores": {"a": 1},
    "label": "b",
    "color": "blue",
    "person": {"name": "Ann", "age": 30, "city": "Rome"},
    "maybe": None,
}


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [n for item in node for n in _walk(item)]
    if not isinstance(node, dict):
        return []
    return [node, *(n for value in node.values() for n in _walk(value))]


def test_schema_of_every_supported_type() -> None:
    spec = output_spec(Everything)
    schema = spec.schema
    assert schema["type"] == "object"
    assert schema["required"] == list(spec.keys) == list(Everything.output_fields)
    props = schema["properties"]
    assert props["count"] == {"type": "integer"}
    assert props["ratio"] == {"type": "number"}
    assert props["ok"] == {"type": "boolean"}
    assert props["note"] == {"type": "string"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["scores"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["label"]["enum"] == ["a", "b"]
    assert props["color"]["enum"] == ["red", "blue"]
    assert props["person"]["required"] == ["name", "age", "city"]
    assert props["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    # refs are inlined, titles dropped, objects with properties closed
    assert "$defs" not in schema
    assert not any("$ref" in n or "title" in n for n in _walk(schema))
    assert all(n["additionalProperties"] is False for n in _walk(schema) if "properties" in n)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(VALID_EVERYTHING, schema)


def test_validation_gives_the_declared_python_types() -> None:
    values = output_spec(Everything).validate(dict(VALID_EVERYTHING))
    assert values["color"] is Color.BLUE
    assert values["person"] == Person(name="Ann", age=30, city="Rome")
    assert values["tags"] == ["x", "y"] and values["maybe"] is None
    assert isinstance(values["ratio"], float) and values["ok"] is True


def test_validation_errors_name_the_field_and_value() -> None:
    spec = output_spec(Everything)
    bad = {**VALID_EVERYTHING, "count": "many", "color": "green"}
    with pytest.raises(ParseError) as info:
        spec.validate(bad)
    assert "count: Input should be a valid integer" in info.value.message
    assert "(got 'many')" in info.value.message
    assert "color: Input should be 'red' or 'blue'" in info.value.message
    with pytest.raises(ParseError, match="expected a JSON object, got list"):
        spec.validate([1, 2])
    missing = {k: v for k, v in VALID_EVERYTHING.items() if k != "note"}
    with pytest.raises(ParseError, match="note: Field required"):
        spec.validate(missing)


def test_extra_keys_are_dropped_and_lax_numbers_accepted() -> None:
    spec = output_spec(dspy.Signature("q -> a: int, b: float"))
    assert spec.validate({"a": "4", "b": 2, "junk": 1}) == {"a": 4, "b": 2.0}


def test_a_single_field_value_without_its_wrapper_is_accepted() -> None:
    sig = dspy.Signature({"t": dspy.InputField(), "person": (Person, dspy.OutputField())})
    spec = output_spec(sig)
    bare = {"name": "Bo", "age": 3, "city": "Oslo"}
    assert spec.validate(bare) == {"person": Person(**bare)}
    with pytest.raises(ParseError, match="person: Field required"):
        spec.validate({"name": "Bo"})


def test_pydantic_constraints_are_validated() -> None:
    sig = dspy.Signature({"q": dspy.InputField(), "book": (Titled, dspy.OutputField())})
    spec = output_spec(sig)
    # a property named "title" survives the dropping of schema titles
    assert set(spec.schema["properties"]["book"]["properties"]) == {"title", "pages"}
    assert spec.schema["properties"]["book"]["properties"]["pages"]["minimum"] == 1
    with pytest.raises(ParseError, match=r"book\.pages: Input should be greater than or equal"):
        spec.validate({"book": {"title": "x", "pages": 0}})


def test_recursive_models_keep_their_definitions() -> None:
    sig = dspy.Signature({"q": dspy.InputField(), "tree": (Node, dspy.OutputField())})
    schema = output_spec(sig).schema
    assert "$defs" in schema and "Node" in schema["$defs"]
    jsonschema.validate({"tree": {"value": 1, "children": [{"value": 2}]}}, schema)
    values = output_spec(sig).validate({"tree": {"value": 1, "children": [{"value": 2}]}})
    assert values["tree"].children[0].value == 2


def test_template_descriptions_read_as_sentences() -> None:
    sig = dspy.Signature(
        {
            "q": dspy.InputField(),
            "plain": (int, dspy.OutputField(desc="${a count} of things")),
            "why": (str, dspy.OutputField(prefix="Because:", desc="${the reason}")),
            "answer": (int, dspy.OutputField(prefix="Final:")),
        }
    )
    assert output_spec(sig).descriptions == (
        ("plain", "a count of things"),
        ("why", "Because: the reason"),
    )


def test_descriptions_come_from_desc() -> None:
    spec = output_spec(
        dspy.Signature(
            {
                "q": dspy.InputField(),
                "a": (int, dspy.OutputField(desc="how many")),
                "b": (int, dspy.OutputField()),
            }
        )
    )
    assert spec.descriptions == (("a", "how many"),)
    assert spec.schema["properties"]["a"]["description"] == "how many"
    assert "description" not in spec.schema["properties"]["b"]


def test_sketch_is_a_compact_json_like_line() -> None:
    assert output_spec(Everything).sketch == (
        '{"count": integer, "ratio": number, "ok": true | false, "note": string, '
        '"tags": [string, ...], "scores": {string: integer, ...}, "label": "a" | "b", '
        '"color": "red" | "blue", "person": {"name": string, "age": integer, "city": string}, '
        '"maybe": integer | null}'
    )
    assert schema_sketch({"type": ["string", "null"]}) == "string | null"
    assert schema_sketch({"const": 3}) == "3"
    assert schema_sketch({"type": "array", "prefixItems": [{"type": "integer"}]}) == "[integer]"
    assert schema_sketch({"$ref": "#/$defs/Node"}) == "Node"
    assert schema_sketch({}) == "any" and schema_sketch(None) == "any"


@pytest.mark.parametrize(
    ("annotation", "good", "bad", "value"),
    [
        (Literal["yes", "no"], ["yes", "no"], ["Yes", "maybe", "yesno"], "no"),
        (Literal["a.b", "c|d", "(x)"], ["a.b", "c|d", "(x)"], ["axb", "c", "x"], "c|d"),
        (Literal[1, 2, 3], ["1", "3"], ["4", "01"], 3),
        (Color, ["red", "blue"], ["RED", "green"], Color.BLUE),
        (Priority, ["1", "2"], ["3"], Priority.HIGH),
        (bool, ["true", "false"], ["True", "yes"], False),
        (int, ["0", "-7", "123456789012345678"], ["007", "1.5", "1234567890123456789", "-"], -7),
        (float, ["0", "1.5", "-2.25"], ["1.", ".5", "1e5"], -2.25),
    ],
)
def test_single_closed_field_gets_a_regex(
    annotation: Any, good: list[str], bad: list[str], value: Any
) -> None:
    sig = dspy.Signature({"q": dspy.InputField(), "out": (annotation, dspy.OutputField())})
    spec = output_spec(sig)
    single = spec.single
    assert single is not None and single.key == "out"
    for text in good:
        assert re.fullmatch(single.regex, text), text
        spec.validate_single(text)  # everything the regex allows validates
    for text in bad:
        assert not re.fullmatch(single.regex, text), text
    rendered = single.render(value)
    assert re.fullmatch(single.regex, rendered)
    assert spec.validate_single(rendered) == {"out": value}


@pytest.mark.parametrize(
    "annotation",
    [str, list[int], Person, Literal["a", 1], Literal["two\nlines", "x"], int | None],
)
def test_other_single_fields_use_json(annotation: Any) -> None:
    sig = dspy.Signature({"q": dspy.InputField(), "out": (annotation, dspy.OutputField())})
    assert output_spec(sig).single is None


def test_two_fields_never_use_a_regex() -> None:
    assert output_spec(dspy.Signature("q -> a: int, b: int")).single is None


def test_validate_single_errors() -> None:
    spec = output_spec(dspy.Signature("q -> n: int"))
    with pytest.raises(ParseError, match="'four' is not an integer"):
        spec.validate_single("four")
    spec = output_spec(dspy.Signature("q -> label: Literal['x', 'y']"))
    with pytest.raises(ParseError, match="label: Input should be 'x' or 'y'"):
        spec.validate_single("z")


def test_dump_renders_values_as_json_data() -> None:
    spec = output_spec(Everything)
    values = spec.validate(dict(VALID_EVERYTHING))
    dumped = spec.dump(values)
    # None values are not shown; everything else round-trips to the JSON it came from
    assert dumped == {k: v for k, v in VALID_EVERYTHING.items() if v is not None}
    # DSPy 2.4 state files hold strings: they are shown typed when they validate, else as is
    assert spec.dump({"count": "4", "ok": "true", "color": "red"}) == {
        "count": 4,
        "ok": True,
        "color": "red",
    }
    assert spec.dump({"count": "three", "ratio": "0.5", "other": 1}) == {
        "count": "three",
        "ratio": 0.5,
    }
    assert spec.dump({"count": None}) == {}
    # a pydantic model saved as its JSON text (Predict.dump_state) is shown as the object
    saved = Person(name="Ann", age=30, city="Rome").model_dump_json()
    assert spec.dump({"person": saved}) == {"person": VALID_EVERYTHING["person"]}
    assert spec.dump({"note": '{"not": "parsed for a str field"}'}) == {
        "note": '{"not": "parsed for a str field"}'
    }


def test_unsupported_types_are_a_config_error() -> None:
    class Opaque:
        pass

    sig = dspy.Signature({"q": dspy.InputField(), "x": (Opaque, dspy.OutputField())})
    with pytest.raises(ConfigError, match="cannot be used as typed outputs"):
        output_spec(sig)


def test_spec_is_cached_and_rebuilt_after_edits() -> None:
    sig = dspy.Signature("q -> a: int")
    spec = output_spec(sig)
    assert output_spec(sig) is spec
    sig.fields["a"].json_schema_extra["desc"] = "a count"
    rebuilt = output_spec(sig)
    assert rebuilt is not spec and rebuilt.descriptions == (("a", "a count"),)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        (' Sure: ```json\n{"a": [1, 2]}\n``` done', {"a": [1, 2]}),
        ('{"a": "}"} {"b": 2}', {"a": "}"}),
    ],
)
def test_extract_json_finds_the_first_object(text: str, value: Any) -> None:
    assert extract_json(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no braces here", "no JSON object found"),
        ('{"a": [1, 2', "cut off before it is complete; raise max_tokens"),
        ('{"a": tru} and more', "not valid JSON"),
    ],
)
def test_extract_json_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        extract_json(text)


def test_describe_errors_limits_the_list() -> None:
    errors = [{"loc": (f"f{i}",), "msg": "bad", "input": i, "type": "x"} for i in range(5)]
    assert (
        describe_errors(errors) == "f0: bad (got 0); f1: bad (got 1); f2: bad (got 2); and 2 more"
    )
