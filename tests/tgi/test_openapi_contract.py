"""Every body the builders produce validates against TGI's own OpenAPI schemas.

The schemas are TGI's ``docs/openapi.json`` (3.3.x) and the same file at the last release of each
older major line. ``$ref``s are resolved with ``referencing``; the documents are read as JSON
Schema 2020-12, which is what utoipa emits for the keywords used (numeric ``exclusiveMinimum``).
Beyond the schema (which allows unknown keys) each body may only use keys the schema declares:
TGI silently ignores unknown fields, so an undeclared key would be lost without a word.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tgispy.errors import InvalidRequestError
from tgispy.tgi import ServerInfo, build_chat_request, build_generate_request

from ._data import load_json

INFO = ServerInfo(
    version="3.3.6-dev0",
    max_input_tokens=4095,
    max_total_tokens=4096,
    max_best_of=2,
    max_stop_sequences=4,
)


@cache
def validator(doc: str, schema: str) -> Draft202012Validator:
    uri = f"urn:tgi:{doc}"
    resource = Resource.from_contents(load_json(doc), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    return Draft202012Validator({"$ref": f"{uri}#/components/schemas/{schema}"}, registry=registry)


def declared(doc: str, schema: str) -> set[str]:
    return set(load_json(doc)["components"]["schemas"][schema]["properties"])


def assert_generate_body_valid(body: dict[str, Any], doc: str = "openapi.json") -> None:
    errors = [e.message for e in validator(doc, "GenerateRequest").iter_errors(body)]
    assert not errors, (body, errors)
    assert set(body) <= declared(doc, "GenerateRequest")
    assert "parameters" in body
    assert set(body["parameters"]) <= declared(doc, "GenerateParameters"), body


def _tgi_tool_view(body: dict[str, Any]) -> dict[str, Any]:
    # TGI's FunctionDefinition reads OpenAI's "parameters" through `#[serde(alias = "parameters")]
    # arguments`; utoipa does not show serde aliases, so the schema only names "arguments".
    if "tools" not in body:
        return body
    tools = []
    for tool in body["tools"]:
        function = dict(tool["function"])
        if "parameters" in function:
            function["arguments"] = function.pop("parameters")
        tools.append({**tool, "function": function})
    return {**body, "tools": tools}


def assert_chat_body_valid(body: dict[str, Any], doc: str = "openapi.json") -> None:
    view = _tgi_tool_view(body)
    errors = [e.message for e in validator(doc, "ChatRequest").iter_errors(view)]
    assert not errors, (body, errors)
    assert set(body) <= declared(doc, "ChatRequest"), body


# ---- /generate, /generate_stream ---------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
GRAMMARS = [
    {"type": "json", "value": SCHEMA},
    {"type": "json", "value": '{"properties": {"a": {"type": "integer"}}}'},
    {"type": "json_object", "value": SCHEMA},
    {
        "type": "regex",
        "value": r"((25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(25[0-5]|2[0-4]\d|[01]?\d\d?)",
    },
    {"type": "json_schema", "value": {"name": "answer", "schema": SCHEMA}},
]

probability = st.one_of(st.none(), st.just(1.0), st.just(1), st.floats(0.01, 0.99))


@st.composite
def generate_kwargs(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    stream = draw(st.booleans())
    n = 1 if stream else draw(st.integers(1, 2))
    kwargs: dict[str, Any] = {"n": n}
    if n > 1:
        kwargs["temperature"] = draw(st.floats(0.05, 2.0))
    else:
        kwargs["temperature"] = draw(st.one_of(st.none(), st.just(0), st.floats(0.01, 2.0)))
        # seed=0 is valid for TGI but not for the schema: see test_seed_zero_deviation
        kwargs["seed"] = draw(st.one_of(st.none(), st.integers(1, 2**63 - 1)))
    optional: dict[str, st.SearchStrategy[Any]] = {
        "max_tokens": st.integers(1, 4095),
        "top_p": probability,
        "typical_p": probability,
        "top_k": st.integers(1, 100),
        "stop": st.one_of(
            st.text(min_size=1, max_size=5), st.lists(st.text(max_size=5), max_size=4)
        ),
        "repetition_penalty": st.floats(0.1, 3.0),
        "frequency_penalty": st.floats(-1.99, 2.0),
        "truncate": st.integers(1, 4095),
        "watermark": st.booleans(),
        "return_full_text": st.booleans(),
        "details": st.booleans(),
        "top_n_tokens": st.integers(0, 5),
        "grammar": st.sampled_from(GRAMMARS),
        "adapter_id": st.sampled_from(["predibase/dbpedia", "smangrul/starcoder-hugcode"]),
        "decoder_input_details": st.just(False) if stream else st.booleans(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            kwargs[key] = draw(strategy)
    return kwargs, stream


@settings(max_examples=300, deadline=None, database=None)
@given(case=generate_kwargs(), with_info=st.booleans())
def test_generate_bodies_match_the_schema(
    case: tuple[dict[str, Any], bool], with_info: bool
) -> None:
    kwargs, stream = case
    body = build_generate_request(
        "Test request", kwargs, info=INFO if with_info else None, stream=stream
    )
    assert_generate_body_valid(body)


@pytest.mark.parametrize(
    ("temperature", "top_p", "n", "stream", "seed"),
    [
        combo
        for combo in itertools.product(
            [None, 0, 0.5, 1.5], [None, 1.0, 0.9], [1, 2], [False, True], [None, 42]
        )
        if not (combo[2] > 1 and (combo[0] in (None, 0) or combo[3] or combo[4]))
    ],
)
def test_generate_matrix(temperature: Any, top_p: Any, n: int, stream: bool, seed: Any) -> None:
    kwargs = {
        "temperature": temperature,
        "top_p": top_p,
        "n": n,
        "seed": seed,
        "max_tokens": 20,
        "stop": ["\n\n", "---"],
    }
    body = build_generate_request("Q: 1+1?\nA:", kwargs, info=INFO, stream=stream)
    assert_generate_body_valid(body)
    params = body["parameters"]
    sampling = n > 1 or (temperature is not None and temperature > 0)
    assert params["do_sample"] is sampling
    assert ("temperature" in params) is (temperature not in (None, 0))
    assert ("top_p" in params) is (sampling and top_p == 0.9)


def test_seed_zero_deviation() -> None:
    """TGI accepts seed=0 (test_flash_llama_all_params recorded "seed": 0 from a real server)
    while the schema says ``exclusiveMinimum: 0``; that is the one schema error such a body has."""
    body = build_generate_request("Test request", {"seed": 0, "temperature": 0.5})
    errors = list(validator("openapi.json", "GenerateRequest").iter_errors(body))
    assert [(list(e.absolute_path), e.validator) for e in errors] == [
        (["parameters", "seed"], "exclusiveMinimum")
    ]
    recorded = load_json("snapshots/test_flash_llama/test_flash_llama_all_params.json")
    assert recorded["details"]["seed"] == 0


@pytest.mark.parametrize(
    ("doc", "version"),
    [
        ("openapi-v0.9.4.json", "0.9.4"),
        ("openapi-v1.4.5.json", "1.4.5"),
        ("openapi-v2.4.1.json", "2.4.1"),
        ("openapi.json", "3.3.6-dev0"),
    ],
)
def test_bodies_for_old_servers_use_only_fields_they_know(doc: str, version: str) -> None:
    """With a server's version known, every accepted body fits that version's own schema."""
    info = ServerInfo(version=version, max_best_of=2, max_stop_sequences=4)
    every = {
        "max_tokens": 20,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 5,
        "typical_p": 0.9,
        "seed": 3,
        "stop": ["x"],
        "repetition_penalty": 1.1,
        "frequency_penalty": 0.5,
        "truncate": 10,
        "watermark": True,
        "return_full_text": False,
        "decoder_input_details": True,
        "details": True,
        "top_n_tokens": 2,
        "grammar": {"type": "regex", "value": "[a-z]+"},
        "adapter_id": "a/b",
    }
    sent = 0
    for key, value in every.items():
        try:
            body = build_generate_request("Hi", {"temperature": 0.5, key: value}, info=info)
        except InvalidRequestError as exc:  # refused: the version is too old for this field
            assert "needs TGI >=" in str(exc)
            continue
        sent += 1
        assert_generate_body_valid(body, doc)
    assert sent >= 13


# ---- /v1/chat/completions -----------------------------------------------------------------------

MESSAGES: list[list[dict[str, Any]]] = [
    [{"role": "user", "content": "What is Deep Learning?"}],
    [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ],
    [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "data:,"}},
            ],
        }
    ],
    [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"answer": "x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "0", "content": "6.7"},
    ],
    [{"role": "user", "content": "Continue"}, {"role": "assistant", "content": "Once upon"}],
]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA},
    },
    {
        "type": "function",
        "function": {"name": "get_time", "arguments": {"type": "object", "properties": {}}},
    },
]
RESPONSE_FORMATS = [
    {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}},
    {"type": "json_object", "value": SCHEMA},
    {"type": "json", "value": SCHEMA},
    {"type": "regex", "value": "[0-9]+"},
    {"type": "text"},
]


@st.composite
def chat_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "max_tokens": st.integers(1, 4095),
        "temperature": st.one_of(st.none(), st.just(0), st.floats(0.01, 2.0)),
        "top_p": probability,
        "seed": st.integers(0, 2**63 - 1),
        "stop": st.one_of(
            st.text(min_size=1, max_size=5), st.lists(st.text(max_size=5), max_size=4)
        ),
        "frequency_penalty": st.floats(-2.0, 2.0),
        "presence_penalty": st.floats(-2.0, 2.0),
        "n": st.just(1),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            kwargs[key] = draw(strategy)
    if draw(st.booleans()):
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = draw(st.integers(0, 5))
    constraint = draw(st.sampled_from(["none", "format", "tools"]))
    if constraint == "format":
        kwargs["response_format"] = draw(st.sampled_from(RESPONSE_FORMATS))
    elif constraint == "tools":
        kwargs["tools"] = TOOLS
        kwargs["tool_choice"] = draw(
            st.sampled_from(
                [
                    None,
                    "auto",
                    "none",
                    "required",
                    "get_time",
                    {"type": "function", "function": {"name": "get_weather"}},
                ]
            )
        )
        if draw(st.booleans()):
            kwargs["tool_prompt"] = "Use a tool."
    return kwargs


@settings(max_examples=300, deadline=None, database=None)
@given(
    kwargs=chat_kwargs(),
    messages=st.sampled_from(MESSAGES),
    stream=st.booleans(),
    model=st.sampled_from([None, "tgi", "predibase/dbpedia"]),
    with_info=st.booleans(),
)
def test_chat_bodies_match_the_schema(
    kwargs: dict[str, Any],
    messages: list[dict[str, Any]],
    stream: bool,
    model: str | None,
    with_info: bool,
) -> None:
    body = build_chat_request(
        messages, kwargs, model=model, info=INFO if with_info else None, stream=stream
    )
    assert_chat_body_valid(body)
    assert body.get("stream", False) is stream


def test_tools_use_the_names_both_eras_read() -> None:
    """OpenAI's "parameters" is what 1.4.x declares and what 2.x+ reads through its alias."""
    body = build_chat_request(MESSAGES[0], {"tools": TOOLS[:1]})
    v145 = validator("openapi-v1.4.5.json", "ChatRequest")
    assert not list(v145.iter_errors({**body, "model": "tgi"}))
    assert body["tools"][0]["function"]["parameters"] == SCHEMA
