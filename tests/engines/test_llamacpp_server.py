"""The llama.cpp facts our dialect relies on, confirmed against the real server.

facts.json marks several llama.cpp facts "derived" (read from the code at commit 0c1e57098, never
seen on a running server). Each test here sends the dialect's own request bodies to the real
llama.cpp server (xllamacpp's embedding) and parses the answers with the dialect; what they
confirmed is listed in tests/engines/README.md. Requests stay a few tokens long.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tgispy.engines import Constraint, Delta, LlamaCppDialect, OpenAIDialect, Request, Result
from tgispy.errors import ContextWindowExceededError, ValidationError

from .conftest import CTX_PER_SLOT, SLOTS, LlamaServer

DIALECT = LlamaCppDialect()
PROMPT = "The three primary colors are"


def generate(server: LlamaServer, request: Request) -> Result:
    path, body = DIALECT.build(request)
    status, _, raw = server.request(path, body)
    if status != 200:
        raise DIALECT.error(status, raw, replica=server.url)
    return DIALECT.parse(request, raw)


def stream(server: LlamaServer, request: Request) -> list[Delta]:
    path, body = DIALECT.build(request)
    status, _, raw = server.request(path, body)
    assert status == 200, raw
    deltas: list[Delta] = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            deltas.extend(DIALECT.parse_event(request, block[len("data: ") :]))
    return deltas


def test_every_response_names_the_server(llama_server: LlamaServer) -> None:
    for path in ("/health", "/props", "/v1/models", "/no-such-route"):
        _, headers, _ = llama_server.request(path)
        assert headers.get("Server") == "llama.cpp", path


def test_props_and_models_give_the_limits(llama_server: LlamaServer) -> None:
    status, _, raw = llama_server.request("/props")
    assert status == 200
    limits = DIALECT.parse_limits(raw)
    assert limits.context_length == CTX_PER_SLOT and limits.max_n == SLOTS
    assert limits.models and limits.models[0].endswith(".gguf")
    assert limits.version  # build_info
    models = OpenAIDialect().parse_limits(llama_server.request("/v1/models")[2])
    assert models.extra["owned_by"] == ["llamacpp"] and models.models == limits.models


def test_temperature_zero_is_greedy_and_repeatable(llama_server: LlamaServer) -> None:
    request = Request(prompt=PROMPT, max_tokens=6, temperature=0.0)
    first = generate(llama_server, request)
    second = generate(llama_server, request)
    assert first.choices[0].text == second.choices[0].text != ""
    assert first.choices[0].finish_reason == "length"
    assert first.usage is not None
    assert first.usage["completion_tokens"] == 6 and "cached_tokens" in first.usage


def test_matched_stop_string_is_cut_from_the_text(llama_server: LlamaServer) -> None:
    free = generate(llama_server, Request(prompt=PROMPT, max_tokens=6)).choices[0].text
    words = free.split()
    assert len(words) >= 2, free
    stop = " " + words[1]  # a stop string that greedy decoding is certain to produce
    cut = generate(llama_server, Request(prompt=PROMPT, max_tokens=6, stop=(stop,))).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.text == free[: free.index(stop)]
    assert stop not in cut.text


def test_n_is_served_in_one_request_up_to_the_slot_count(llama_server: LlamaServer) -> None:
    request = Request(prompt=PROMPT, max_tokens=3, temperature=0.0, n=SLOTS)
    result = generate(llama_server, request)
    assert [c.index for c in result.choices] == list(range(SLOTS))
    assert len({c.text for c in result.choices}) == 1  # greedy: identical choices
    with pytest.raises(
        ValidationError, match=rf"between 1 <= value <= {SLOTS}, but got {SLOTS + 1}"
    ):
        generate(llama_server, Request(prompt=PROMPT, max_tokens=3, n=SLOTS + 1))


SCHEMA = {
    "type": "object",
    "properties": {"color": {"enum": ["red", "green", "blue"]}, "clear": {"type": "boolean"}},
    "required": ["color", "clear"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("chat", [False, True])
def test_top_level_json_schema_constrains_both_routes(
    llama_server: LlamaServer, chat: bool
) -> None:
    text = "Describe the sky as JSON:"
    base: dict[str, Any] = (
        {"messages": ({"role": "user", "content": text},)} if chat else {"prompt": text}
    )
    request = Request(**base, max_tokens=40, constraint=Constraint("json", SCHEMA))
    choice = generate(llama_server, request).choices[0]
    value = json.loads(choice.text)
    assert set(value) == {"color", "clear"}, choice
    assert value["color"] in ("red", "green", "blue") and isinstance(value["clear"], bool)
    assert choice.finish_reason == "stop"


@pytest.mark.parametrize(
    "regex",
    [r"-?(0|[1-9][0-9]{0,17})", r"(red|green|blue)\n?"],
)
def test_regex_constraints_become_gbnf_the_server_enforces(
    llama_server: LlamaServer, regex: str
) -> None:
    request = Request(
        prompt="Q: Is water wet?\nA:", max_tokens=6, constraint=Constraint("regex", regex)
    )
    choice = generate(llama_server, request).choices[0]
    assert re.fullmatch(regex, choice.text), (regex, choice.text)


def test_choice_constraint(llama_server: LlamaServer) -> None:
    request = Request(
        prompt="Pick one:", max_tokens=5, constraint=Constraint("choice", ["alpha", "beta"])
    )
    assert generate(llama_server, request).choices[0].text in ("alpha", "beta")


def test_error_shapes(llama_server: LlamaServer) -> None:
    with pytest.raises(ValidationError, match="Failed to initialize samplers"):
        generate(
            llama_server,
            Request(prompt="x", max_tokens=2, constraint=Constraint("grammar", "root ::= (")),
        )
    with pytest.raises(
        ContextWindowExceededError, match="exceeds the available context size"
    ) as info:
        generate(llama_server, Request(prompt="x " * (CTX_PER_SLOT + 100), max_tokens=2))
    assert info.value.status == 400 and info.value.error_type == "exceed_context_size_error"
    status, _, raw = llama_server.request("/v1/completions", raw=b"{not json")
    malformed = DIALECT.error(status, raw)
    # facts.json derived a 500 for malformed JSON; the server answers 400 invalid_request_error
    assert status == 400 and isinstance(malformed, ValidationError), raw
    assert malformed.error_type == "invalid_request_error" and "parse error" in malformed.message
    status, _, raw = llama_server.request("/no-such-route")
    assert status == 404 and DIALECT.error(status, raw).error_type == "not_found_error"


@pytest.mark.parametrize("chat", [False, True])
def test_stream_shapes_match_the_whole_response(llama_server: LlamaServer, chat: bool) -> None:
    base: dict[str, Any] = (
        {"messages": ({"role": "user", "content": "Say hello."},)} if chat else {"prompt": PROMPT}
    )
    whole = generate(llama_server, Request(**base, max_tokens=5))
    deltas = stream(llama_server, Request(**base, max_tokens=5, stream=True))
    assert deltas[-1] == Delta(done=True)  # OpenAI routes end with [DONE]
    text = "".join(d.text for d in deltas)
    assert text == whole.choices[0].text
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["length"]
    usage = [d.usage for d in deltas if d.usage]
    assert usage and usage[-1]["completion_tokens"] == 5
