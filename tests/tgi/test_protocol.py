"""The protocol table (tgispy.tgi._protocol) against TGI's own documents, and what derives from it.

The table is checked against the vendored ``openapi*.json`` (names, JSON types, nullability, and
which release first declares each field) and ``protocol_facts.json`` (ranges from TGI's
validation messages, ``since`` versions, ``/info`` history, launcher defaults), so it cannot drift
from TGI; the derived lists (client keys, server deserialisation and ``/info``, the doubles'
``/info``) are checked against the table, so they cannot drift from it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from tgispy.errors import InvalidRequestError
from tgispy.server._config import ServerConfig, SimConfig
from tgispy.server._front import Front
from tgispy.server._problems import Problem
from tgispy.server._sim import SimBackend
from tgispy.server._validation import (
    _CHAT_FIELDS,
    _COMPLETION_FIELDS,
    _PARAMETER_FIELDS,
    GenerateParams,
    Limits,
    parse_generate,
    validate,
)
from tgispy.testing import DEFAULT_INFO
from tgispy.tgi import (
    CHAT_KEYS,
    GENERATE_KEYS,
    ServerInfo,
    build_chat_request,
    build_generate_request,
)
from tgispy.tgi._info import PARAMETER_SINCE
from tgispy.tgi._protocol import (
    CHAT_FIELDS,
    COMPLETION_FIELDS,
    ENDPOINTS,
    FEATURE_SINCE,
    GENERATE_PARAMETERS,
    GRAMMAR_TYPES,
    INFO_FIELDS,
    LAUNCHER,
    PARAMETERS,
    Bound,
    Field,
    InfoField,
    Version,
    info_document,
    names_of,
    route_fields,
)
from tgispy.tgi._request import _FLAGS

from ._data import load_json, protocol_facts

DOCS: dict[Version, str] = {
    (0, 9, 4): "openapi-v0.9.4.json",
    (1, 4, 5): "openapi-v1.4.5.json",
    (2, 4, 1): "openapi-v2.4.1.json",
    (3, 3, 6): "openapi.json",
}
CURRENT = "openapi.json"
FIELD_TABLES = {
    "GenerateParameters": GENERATE_PARAMETERS,
    "ChatRequest": CHAT_FIELDS,
    "CompletionRequest": COMPLETION_FIELDS,
}
# serde type -> the OpenAPI type utoipa writes for it
WIRE_JSON = {
    "bool": "boolean",
    "u32": "integer",
    "i32": "integer",
    "u64": "integer",
    "usize": "integer",
    "f32": "number",
    "string": "string",
    "strings": "array",
}


def schema(doc: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = load_json(doc)["components"]["schemas"].get(name, {})
    return found


def declared(doc: str, name: str) -> dict[str, Any]:
    properties: dict[str, Any] = schema(doc, name).get("properties", {})
    return properties


def json_type(prop: dict[str, Any]) -> str:
    """A property's type; a ``$ref`` (alone or under ``allOf``) is an object."""
    if "type" in prop:
        return str(prop["type"])
    assert "$ref" in prop or "allOf" in prop, prop
    return "object"


def version(text: str) -> Version:
    major, minor, patch = [*text.split("."), "0", "0"][:3]
    return (int(major), int(minor), int(patch))


# ---- the table against TGI's OpenAPI documents ------------------------------------------------


@pytest.mark.parametrize("name", list(FIELD_TABLES))
def test_fields_have_openapi_names_types_and_nullability(name: str) -> None:
    table = FIELD_TABLES[name]
    props = declared(CURRENT, name)
    documented = {f.name: f for f in table if f.documented}
    assert set(documented) == set(props)
    for field in documented.values():
        prop = props[field.name]
        assert field.json_type == json_type(prop), field.name
        assert field.optional == bool(prop.get("nullable", False)), field.name
        if field.wire in WIRE_JSON:
            assert WIRE_JSON[field.wire] == field.json_type, field.name
        if field.wire == "f32":
            assert prop.get("format") == "float", field.name


def test_info_fields_have_openapi_names_types_and_nullability() -> None:
    props = declared(CURRENT, "Info")
    current = {f.name: f for f in INFO_FIELDS if f.until is None}
    assert set(current) == set(props)
    for info in current.values():
        assert info.json_type == props[info.name]["type"], info.name
        assert info.nullable == bool(props[info.name].get("nullable", False)), info.name


def _expected_at(table: tuple[Field, ...], at: Version) -> set[str]:
    return {f.name for f in table if f.documented and f.since is not None and f.since <= at}


@pytest.mark.parametrize("at", list(DOCS))
@pytest.mark.parametrize("name", list(FIELD_TABLES))
def test_since_matches_each_release_schema(name: str, at: Version) -> None:
    """A field with a known ``since`` is declared by exactly the releases at or after it; a
    field whose introduction the facts do not give is at least declared by the current one."""
    table = FIELD_TABLES[name]
    props = set(declared(DOCS[at], name))
    known = {f.name for f in table if f.since is not None and f.documented}
    assert props & known == _expected_at(table, at), (name, at)


@pytest.mark.parametrize("at", list(DOCS))
def test_info_history_matches_each_release_schema(at: Version) -> None:
    def name_at(info: InfoField) -> str:
        renamed = info.renamed is not None and at < info.renamed
        return info.formerly if renamed and info.formerly else info.name

    expected = {
        name_at(i): i for i in INFO_FIELDS if i.since <= at and (i.until is None or at < i.until)
    }
    props = declared(DOCS[at], "Info")
    assert set(expected) == set(props)
    for name, info in expected.items():
        assert info.json_type == props[name]["type"], name
        assert info.nullable == bool(props[name].get("nullable", False)), name


@pytest.mark.parametrize("at", list(DOCS))
def test_grammar_types_and_endpoints_by_release(at: Version) -> None:
    variants = schema(DOCS[at], "GrammarType").get("oneOf", [])
    names = {v["properties"]["type"]["enum"][0] for v in variants}
    documented = {g.name: g for g in GRAMMAR_TYPES if g.alias_of is None}
    assert names == {n for n, g in documented.items() if g.since <= at}
    paths = load_json(DOCS[at])["paths"]
    for endpoint in ENDPOINTS.values():
        if endpoint.since is None:
            assert endpoint.path in load_json(CURRENT)["paths"]
            continue
        assert (endpoint.path in paths) is (endpoint.since <= at), (endpoint.path, at)
        if endpoint.path in paths:
            assert endpoint.method.lower() in paths[endpoint.path]


# ---- the table against protocol_facts.json ---------------------------------------------------

_RULE = re.compile(r"(>=|<=|>|<|less than|up to) (\{\w+\}|-?\d+(?:\.\d+)?)")
# parameter -> the validation_messages that state its rules
_MESSAGES = {
    "best_of": ("BestOf",),
    "top_n_tokens": ("TopNTokens",),
    "temperature": ("Temperature",),
    "repetition_penalty": ("RepetitionPenalty",),
    "frequency_penalty": ("FrequencyPenalty",),
    "top_p": ("TopP",),
    "top_k": ("TopK",),
    "truncate": ("Truncate",),
    "typical_p": ("TypicalP",),
    "max_new_tokens": ("NegativeMaxNewTokens", "MaxTotalTokens"),
    "stop": ("StopSequence",),
}


@pytest.mark.parametrize("name", list(_MESSAGES))
def test_ranges_and_limits_are_tgis_validation_rules(name: str) -> None:
    """The table's bounds and limit for a parameter are exactly those TGI's messages state."""
    messages = [protocol_facts()["validation_messages"][key] for key in _MESSAGES[name]]
    text = " ".join(messages).replace("strictly positive", "> 0")
    field = PARAMETERS[name]
    low = high = limit = None
    for op, operand in _RULE.findall(text):
        if operand.startswith("{"):
            limit = limit or operand.strip("{}")
        elif op in (">", ">="):
            low = Bound(float(operand), exclusive=op == ">")
        else:
            high = Bound(float(operand), exclusive=op == "<")
    assert (field.minimum, field.maximum, field.limit) == (low, high, limit), messages


def test_every_bounded_parameter_is_checked_against_tgis_messages() -> None:
    bounded = {p.name for p in GENERATE_PARAMETERS if p.minimum or p.maximum or p.limit}
    assert bounded - set(_MESSAGES) == {"seed"}  # u64: serde refuses negatives, no message
    assert PARAMETERS["seed"].minimum == Bound(0)


def test_generate_parameters_match_the_facts() -> None:
    facts = protocol_facts()["generate_parameters"]["fields"]
    assert set(facts) == set(PARAMETERS)
    for name, fact in facts.items():
        field = PARAMETERS[name]
        assert field.optional == fact["type"].endswith("|null"), name
        if "since" in fact:
            assert field.since == version(fact["since"]), name
        else:
            assert field.since == (0, 0, 0), name
        if isinstance(fact.get("default"), bool):
            assert field.default is fact["default"], name


def test_info_history_and_launcher_defaults_match_the_facts() -> None:
    facts = protocol_facts()["info"]
    assert [f.name for f in INFO_FIELDS if f.until is None] == facts["fields_3x"]
    by_name = {f.name: f for f in INFO_FIELDS}
    for at, change in facts["changes"].items():
        for word in change.split(", "):
            name = word[1:].split(" ")[0]
            if word.startswith("+"):
                assert by_name[name].since == version(at), word
            elif word.startswith("-"):
                assert by_name[name].until == version(at), word
            else:
                old, renamed, new = word.split(" ")
                assert renamed == "renamed", word
                assert (by_name[new].formerly, by_name[new].renamed) == (old, version(at))
    for launcher_field in dataclasses.fields(LAUNCHER):
        name = launcher_field.name
        assert getattr(LAUNCHER, name) == facts["launcher_defaults"][name], name


def test_routes_and_openai_mappings_agree() -> None:
    """A parameter can be set on chat / completions exactly when one of its fields maps onto it."""
    for param in GENERATE_PARAMETERS:
        for route, table in (("chat", CHAT_FIELDS), ("completions", COMPLETION_FIELDS)):
            mapped = any(f.sets == param.name for f in table)
            assert (route in param.routes) is mapped, (param.name, route)
    for field in CHAT_FIELDS + COMPLETION_FIELDS:
        assert field.sets is None or field.sets in PARAMETERS, field.name
    assert set(route_fields("generate")) - set(route_fields("generate_stream")) == {
        "best_of",
        "decoder_input_details",
    }


def test_violates_and_least_int() -> None:
    top_p = PARAMETERS["top_p"]
    assert [top_p.violates(x) for x in (0.0, 0.5, 1.0)] == [True, False, True]
    penalty = PARAMETERS["frequency_penalty"]
    assert [penalty.violates(x) for x in (-2.0, 2.0, 2.01, -2.01)] == [False, False, True, True]
    assert PARAMETERS["best_of"].least_int == 1
    assert PARAMETERS["top_n_tokens"].least_int == 0
    assert PARAMETERS["do_sample"].least_int == 0  # unbounded


# ---- what derives from the table -------------------------------------------------------------


def test_server_reads_the_table() -> None:
    params = dataclasses.fields(GenerateParams)
    assert [p.name for p in params] == [p.name for p in GENERATE_PARAMETERS]
    for param in params:
        assert param.default == PARAMETERS[param.name].default, param.name
    serde = {p.name: (p.wire, p.optional) for p in GENERATE_PARAMETERS if p.wire != "grammar"}
    assert serde == _PARAMETER_FIELDS
    assert set(_CHAT_FIELDS) == set(route_fields("chat")) - {"messages", "response_format"}
    assert set(_COMPLETION_FIELDS) == set(route_fields("completions")) - {"prompt"}
    limits = Limits()
    for name in ("max_best_of", "max_stop_sequences", "max_top_n_tokens", "max_client_batch_size"):
        assert getattr(limits, name) == getattr(LAUNCHER, name)
    config = ServerConfig(backend="sim")
    assert config.max_concurrent_requests == LAUNCHER.max_concurrent_requests
    assert config.tokenize_workers == LAUNCHER.validation_workers


def test_info_document_and_the_servers_info() -> None:
    body = info_document(model_id="m", max_input_tokens=9, max_total_tokens=10, version="3.3.6")
    props = declared(CURRENT, "Info")
    assert set(schema(CURRENT, "Info")["required"]) <= set(body)
    for name, value in body.items():
        if value is None:
            assert props[name].get("nullable"), name
    front = Front(ServerConfig(backend="sim", max_best_of=3), SimBackend(SimConfig()))
    served = json.loads(front.info_body)
    assert list(served) == list(body)
    assert served["max_best_of"] == 3 and served["router"] == body["router"]
    with pytest.raises(TypeError, match="needs version="):
        info_document(model_id="m", max_input_tokens=9, max_total_tokens=10)
    with pytest.raises(TypeError, match=r"not a TGI 3\.x /info field"):
        info_document(model_id="m", max_input_tokens=9, max_total_tokens=10, version="3", x=1)


def test_doubles_report_launcher_defaults() -> None:
    assert list(DEFAULT_INFO) == protocol_facts()["info"]["fields_3x"]
    for name in ("max_concurrent_requests", "max_best_of", "max_stop_sequences"):
        assert DEFAULT_INFO[name] == getattr(LAUNCHER, name)
    assert DEFAULT_INFO["max_client_batch_size"] == LAUNCHER.max_client_batch_size


def test_client_reads_every_info_field_it_keeps() -> None:
    """ServerInfo keeps only table fields, reads each one, and the former name too."""
    body = info_document(model_id="m", max_input_tokens=9, max_total_tokens=10, version="3.3.6")
    info = ServerInfo.from_json(body)
    for kept in dataclasses.fields(ServerInfo):
        assert getattr(info, kept.name) == body[kept.name], kept.name
    old = {("max_input_length" if k == "max_input_tokens" else k): v for k, v in body.items()}
    assert ServerInfo.from_json(old) == info


def test_client_keys_and_versions_come_from_the_table() -> None:
    assert set(route_fields("generate")) <= GENERATE_KEYS
    assert GENERATE_KEYS - set(route_fields("generate")) == {"max_tokens"}
    openai_names = set(route_fields("chat")) - {
        "messages",
        "model",
        "n",
        "stream",
        "stream_options",
        "logit_bias",
    }
    assert openai_names <= CHAT_KEYS
    booleans = {p.name for p in GENERATE_PARAMETERS if p.json_type == "boolean"}
    assert set(_FLAGS) == booleans - {"do_sample"}
    assert names_of("max_new_tokens") == ("max_new_tokens", "max_tokens", "max_completion_tokens")
    assert PARAMETER_SINCE is FEATURE_SINCE
    for name, since in FEATURE_SINCE.items():
        if name in PARAMETERS:
            assert PARAMETERS[name].since == since
    assert FEATURE_SINCE["chat"] == ENDPOINTS["chat"].since


# Messages whose numbers now come from the table, pinned byte for byte (share facts, not wording).
_CLIENT_MESSAGES = [
    ({"frequency_penalty": 2.5}, "frequency_penalty must be between -2.0 and 2.0, got 2.5"),
    ({"repetition_penalty": 0}, "repetition_penalty must be > 0 (1.0 means no penalty), got 0"),
    (
        {"temperature": 0.5, "top_p": 1.5},
        "top_p must be > 0 and < 1 (use 1.0 or None to turn it off), got 1.5",
    ),
    (
        {"temperature": 0.5, "typical_p": 0},
        "typical_p must be > 0 and < 1 (use 1.0 or None to turn it off), got 0",
    ),
    ({"temperature": -1}, "temperature must be >= 0 (0 means greedy decoding), got -1"),
    ({"top_n_tokens": -1}, "top_n_tokens must be an integer >= 0, got -1"),
    (
        {"grammar": {"type": "yaml", "value": ""}},
        "grammar type must be one of json, regex, json_schema, got 'yaml'",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), _CLIENT_MESSAGES)
def test_client_messages_keep_their_wording(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        build_generate_request("Hi", kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"presence_penalty": 3}, "presence_penalty must be between -2.0 and 2.0, got 3"),
        ({"top_logprobs": -1, "logprobs": True}, "top_logprobs must be an integer >= 0, got -1"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ],
)
def test_client_chat_messages_keep_their_wording(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        build_chat_request([{"role": "user", "content": "Hi"}], kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (GenerateParams(frequency_penalty=-2.5), "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        (GenerateParams(top_p=1.0), "`top_p` must be > 0.0 and < 1.0"),
        (GenerateParams(typical_p=0.0), "`typical_p` must be > 0.0 and < 1.0"),
        (GenerateParams(temperature=0.0), "`temperature` must be strictly positive"),
        (GenerateParams(top_k=0), "`top_k` must be strictly positive"),
        (GenerateParams(max_new_tokens=0), "`max_new_tokens` must be strictly positive"),
    ],
)
def test_server_messages_keep_tgis_wording(params: GenerateParams, message: str) -> None:
    with pytest.raises(Problem) as caught:
        validate("Hi", params, Limits())
    assert caught.value.message == f"Input validation error: {message}"
    assert message in protocol_facts()["validation_messages"].values()  # TGI's own text


def test_server_grammar_variant_message() -> None:
    with pytest.raises(Problem) as caught:
        parse_generate({"inputs": "x", "parameters": {"grammar": {"type": "xml", "value": 1}}})
    assert caught.value.message == (
        "Failed to deserialize the JSON body into the target type: parameters.grammar.type: "
        "unknown variant `xml`, expected one of `json`, `json_object`, `regex`, `json_schema`"
    )
