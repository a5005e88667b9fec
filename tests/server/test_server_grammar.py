"""TGI grammars → llama.cpp (llguidance) constraints."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tgispy.server._grammar import (
    MAX_REGEX_EXPANSION,
    json_grammar,
    regex_grammar,
    to_engine_grammar,
)
from tgispy.server._problems import Problem
from tgispy.server._validation import GrammarSpec

IPV4 = r"((25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(25[0-5]|2[0-4]\d|[01]?\d\d?)"
SCHEMA = {"properties": {"name": {"type": "string"}}, "required": ["name"]}


def _lark_body(grammar: str) -> str:
    prefix = "%llguidance {}\nstart: /"
    assert grammar.startswith(prefix)
    assert grammar.endswith("/")
    return grammar[len(prefix) : -1]


def test_regex_becomes_a_lark_rule_matching_the_whole_output() -> None:
    grammar = regex_grammar(IPV4)
    assert grammar.kind == "lark"
    assert _lark_body(grammar.value) == IPV4


@pytest.mark.parametrize(
    ("pattern", "body", "sample"),
    [
        ("a/b", r"a\/b", "a/b"),
        (r"a\/b", r"a\/b", "a/b"),
        ("\\\\/", r"\\\/", "\\/"),
        ("a\nb", r"a\nb", "a\nb"),
    ],
)
def test_slashes_and_newlines_are_escaped_for_lark(pattern: str, body: str, sample: str) -> None:
    lark = _lark_body(regex_grammar(pattern).value)
    assert lark == body
    # the escaped body still means the same regex
    assert re.fullmatch(pattern, sample)
    assert re.fullmatch(lark, sample)


@pytest.mark.parametrize(
    ("pattern", "detail"),
    [
        ("[a-", "regex parse error"),
        ("a(?=b)", "look-around assertions are not supported"),
        ("(a)\\1", "backreferences are not supported"),
        ("(?>ab)", "atomic groups are not supported"),
        ("", "the regex is empty"),
    ],
)
def test_invalid_regexes_are_rejected_before_generation(pattern: str, detail: str) -> None:
    with pytest.raises(Problem) as info:
        regex_grammar(pattern)
    assert info.value.status == 422
    assert info.value.message.startswith("Input validation error: grammar is not valid: ")
    assert detail in info.value.message


def test_json_schema_as_object_or_string() -> None:
    assert json_grammar(SCHEMA).value == SCHEMA
    assert json_grammar(json.dumps(SCHEMA)).value == SCHEMA
    assert json_grammar(SCHEMA).kind == "json_schema"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ({"type": "object"}, "Grammar must have a 'properties' field"),
        ("{not json", "grammar is not valid"),
        ([1, 2], "the JSON schema must be an object"),
    ],
)
def test_invalid_json_schemas_are_rejected(value: object, detail: str) -> None:
    with pytest.raises(Problem, match=re.escape(detail)):
        json_grammar(value)


def test_spec_variants() -> None:
    assert to_engine_grammar(None) is None
    json_schema = to_engine_grammar(GrammarSpec("json_schema", {"name": "x", "schema": SCHEMA}))
    assert json_schema is not None and json_schema.value == SCHEMA
    json_object = to_engine_grammar(GrammarSpec("json_object", SCHEMA))
    assert json_object is not None and json_object.kind == "json_schema"
    regex = to_engine_grammar(GrammarSpec("regex", "[0-9]+"))
    assert regex is not None and regex.kind == "lark"


# --- grammars llama.cpp would not apply (it generates unconstrained text with a 200) -------------

BOMB = "((((a{99}){99}){99}){99})b"


def _refused(call: object, *args: object) -> str:
    with pytest.raises(Problem) as info:
        call(*args)  # type: ignore[operator]
    assert info.value.status == 422
    assert info.value.error_type == "validation"
    assert info.value.message.startswith("Input validation error: grammar is not valid: ")
    return info.value.message


def test_a_regex_whose_repeats_explode_is_refused() -> None:
    # llguidance compiles it, then runs out of derivatives a few tokens in and stops constraining
    message = _refused(regex_grammar, BOMB)
    assert f"expand to more than {MAX_REGEX_EXPANSION} characters" in message
    _refused(regex_grammar, "(a{101}){100}")
    # at the bound and below: still served
    assert regex_grammar("(a{100}){100}").kind == "lark"
    assert regex_grammar("a{10000}").kind == "lark"
    assert regex_grammar("[0-9]+(a|b)*" + IPV4).kind == "lark"


def test_regex_syntax_llguidance_lacks_is_refused() -> None:
    # Python accepts \\Z; the Rust regex crate (llguidance) does not
    assert "unrecognized escape sequence" in _refused(regex_grammar, r"a\Z")


def test_a_json_schema_with_a_huge_enum_is_refused() -> None:
    schema = {"properties": {"a": {"enum": [f"v{i}" for i in range(100_000)]}}}
    assert "too big" in _refused(json_grammar, schema)
    assert json_grammar({"properties": {"a": {"enum": ["x", "y"]}}}).kind == "json_schema"


def test_a_json_schema_pattern_bomb_is_refused() -> None:
    schema = {"properties": {"a": {"type": "string", "pattern": BOMB}}}
    assert "expand to more than" in _refused(json_grammar, schema)
    nested = {"properties": {"a": {"type": "object", "patternProperties": {BOMB: {}}}}}
    _refused(json_grammar, nested)
    ok = {"properties": {"a": {"type": "string", "pattern": "^([0-9]{4}-){2}[0-9]{2}$"}}}
    assert json_grammar(ok).kind == "json_schema"


def test_a_json_schema_llguidance_cannot_compile_is_refused() -> None:
    assert "does not exist" in _refused(json_grammar, {"properties": {"a": {"$ref": "#/nope"}}})
    lookahead = {"properties": {"a": {"type": "string", "pattern": "a(?=b)"}}}
    assert "look-around" in _refused(json_grammar, lookahead)


async def test_unappliable_grammars_are_422_over_http(sim_client: Any) -> None:
    for grammar in (
        {"type": "regex", "value": BOMB},
        {"type": "json", "value": {"properties": {"a": {"type": "string", "pattern": BOMB}}}},
    ):
        body = {"inputs": "x", "parameters": {"max_new_tokens": 4, "grammar": grammar}}
        resp = await sim_client.post("/generate", json=body)
        assert resp.status == 422
        answer = await resp.json()
        assert answer["error_type"] == "validation"
        assert answer["error"].startswith("Input validation error: grammar is not valid: ")
