"""Request bodies validated against the published OpenAPI specs.

* ``data/openai-openapi-subset.json``: OpenAI's spec (``openai/openai-openapi``, see the file's
  ``x-source``), the schemas reachable from ``CreateCompletionRequest`` and
  ``CreateChatCompletionRequest``. The generic OpenAI dialect must produce bodies that validate
  and use only declared keys (hosted APIs reject or ignore the rest).
* ``data/ollama-openapi-v0.32.15.json``: Ollama's ``docs/openapi.yaml`` at v0.32.15.

vLLM, SGLang and llama.cpp publish no static spec (vLLM's is generated at run time by FastAPI);
their extension keys are checked against facts.json in test_dialects.py, and llama.cpp's against
the real server.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tgispy.engines import (
    Constraint,
    LlamaCppDialect,
    OllamaDialect,
    OpenAIDialect,
    Request,
    SGLangDialect,
    VLLMDialect,
)

DATA = Path(__file__).parent / "data"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
MESSAGES = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"})


@cache
def spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text())
    return loaded


@cache
def validator(name: str, schema: str) -> Draft202012Validator:
    uri = f"urn:spec:{name}"
    resource = Resource.from_contents(spec(name), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    return Draft202012Validator({"$ref": f"{uri}#/components/schemas/{schema}"}, registry=registry)


def declared(name: str, schema: str) -> set[str]:
    node = spec(name)["components"]["schemas"][schema]
    keys = set(node.get("properties", {}))
    for part in node.get("allOf", []):
        if "$ref" in part:
            keys |= declared(name, part["$ref"].rsplit("/", 1)[-1])
        keys |= set(part.get("properties", {}))
    return keys


def assert_valid(name: str, schema: str, body: dict[str, Any]) -> None:
    errors = [e.message for e in validator(name, schema).iter_errors(body)]
    assert not errors, (body, errors)


REQUESTS = [
    Request(model="gpt-4o-mini", prompt="2+2=", max_tokens=5),
    Request(model="gpt-4o-mini", prompt="2+2=", max_tokens=5, temperature=0.7, top_p=0.97, n=3),
    Request(model="m", prompt="x", stop=("\n", "\n\n", "a", "b", "c"), seed=1, stream=True),
    Request(model="m", prompt="x", frequency_penalty=0.5, presence_penalty=0.1),
]


@pytest.mark.parametrize("request_", REQUESTS)
def test_openai_completions_bodies_validate(request_: Request) -> None:
    _, body = OpenAIDialect().build(request_)
    assert_valid("openai-openapi-subset.json", "CreateCompletionRequest", body)
    assert set(body) <= declared("openai-openapi-subset.json", "CreateCompletionRequest")


@pytest.mark.parametrize("request_", REQUESTS)
def test_openai_chat_bodies_validate(request_: Request) -> None:
    chat = Request(**{**request_.__dict__, "prompt": None, "messages": MESSAGES})
    _, body = OpenAIDialect().build(chat)
    assert_valid("openai-openapi-subset.json", "CreateChatCompletionRequest", body)
    assert set(body) <= declared("openai-openapi-subset.json", "CreateChatCompletionRequest")


def test_openai_structured_output_validates() -> None:
    chat = Request(model="gpt-4o-mini", messages=MESSAGES, constraint=Constraint("json", SCHEMA))
    _, body = OpenAIDialect().build(chat)
    assert_valid("openai-openapi-subset.json", "CreateChatCompletionRequest", body)


@pytest.mark.parametrize("dialect", [VLLMDialect(), SGLangDialect(), LlamaCppDialect()])
def test_engine_bodies_keep_openai_types_for_openai_keys(dialect: Any) -> None:
    # Extension keys (top_k, min_p, structured_outputs, json_schema) are the engines' own; every
    # OpenAI key they share must still have OpenAI's type.
    request = Request(model="m", prompt="x", max_tokens=5, temperature=0.7, n=2, stop=("\n",))
    _, body = dialect.build(request)
    shared = {
        k: v
        for k, v in body.items()
        if k in declared("openai-openapi-subset.json", "CreateCompletionRequest")
    }
    assert_valid("openai-openapi-subset.json", "CreateCompletionRequest", shared)


OLLAMA_REQUESTS = [
    Request(model="llama3.2", prompt="2+2=", max_tokens=8, stop=("\n",)),
    Request(
        model="llama3.2",
        prompt="x",
        temperature=0.7,
        top_p=0.9,
        top_k=20,
        seed=1,
        extra={"num_ctx": 2048, "system": "be brief", "format": "json"},
    ),
    Request(model="llama3.2", prompt="x", constraint=Constraint("json", SCHEMA), stream=True),
]


@pytest.mark.parametrize("request_", OLLAMA_REQUESTS)
def test_ollama_generate_bodies_validate(request_: Request) -> None:
    _, body = OllamaDialect().build(request_)
    assert_valid("ollama-openapi-v0.32.15.json", "GenerateRequest", body)
    assert set(body) <= declared("ollama-openapi-v0.32.15.json", "GenerateRequest")


@pytest.mark.parametrize("request_", OLLAMA_REQUESTS)
def test_ollama_chat_bodies_validate(request_: Request) -> None:
    chat = Request(**{**request_.__dict__, "prompt": None, "messages": MESSAGES})
    _, body = OllamaDialect().build(chat)
    assert_valid("ollama-openapi-v0.32.15.json", "ChatRequest", body)
    assert set(body) <= declared("ollama-openapi-v0.32.15.json", "ChatRequest")


def test_ollama_show_request_validates() -> None:
    _, body = OllamaDialect().show_request("llama3.2")
    assert_valid("ollama-openapi-v0.32.15.json", "ShowRequest", body)


def test_the_contract_checks_can_fail() -> None:
    with pytest.raises(AssertionError):
        assert_valid("openai-openapi-subset.json", "CreateCompletionRequest", {"prompt": "x"})
    with pytest.raises(AssertionError):
        assert_valid("ollama-openapi-v0.32.15.json", "GenerateRequest", {"model": "m", "stream": 1})


def test_ollama_chat_system_becomes_the_first_message() -> None:
    chat = Request(model="m", messages=MESSAGES[1:], extra={"system": "be brief"})
    _, body = OllamaDialect().build(chat)
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert "system" not in body
