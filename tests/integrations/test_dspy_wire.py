"""DSPy 3.4 canonical requests -> TGI bodies, TGI answers -> lm15 values (pure, no sockets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ._gate import import_dspy

dspy = import_dspy()

from dspy.lm15 import (  # noqa: E402
    Config,
    FunctionTool,
    ImagePart,
    Message,
    Request,
    TextPart,
    ThinkingPart,
    ToolChoice,
)

from tgispy import errors  # noqa: E402
from tgispy.integrations._dspy_wire import (  # noqa: E402
    CHAT_PARAMETERS,
    GENERATE_PARAMETERS,
    ChatStreamMapper,
    GenerateStreamMapper,
    build_wire_request,
    chat_response,
    default_prompt,
    generate_response,
    to_lm15_error,
)
from tgispy.tgi import (  # noqa: E402
    ServerInfo,
    parse_chat_chunk,
    parse_generate_response,
    parse_stream_event,
)

lm15 = dspy.lm15
OPENAPI = Path(__file__).resolve().parent.parent / "tgi" / "data" / "openapi.json"
INFO = ServerInfo(version="3.3.6-dev0", max_total_tokens=4096, max_stop_sequences=4)


def req(*messages: Any, system: Any = None, tools: tuple[Any, ...] = (), **config: Any) -> Any:
    msgs = messages or (Message.user("Capital of France?"),)
    return Request(
        model="tgi/smol", messages=msgs, system=system, tools=tools, config=Config(**config)
    )


def body(request: Any, **kwargs: Any) -> dict[str, Any]:
    return build_wire_request(request, **kwargs).body


def _to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") is True else out


@pytest.fixture(scope="module")
def tgi_schema() -> Any:
    components = _to_jsonschema(json.loads(OPENAPI.read_text())["components"])

    def check(name: str, instance: Any) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": components}
        jsonschema.Draft202012Validator(schema).validate(instance)

    return check


# ---- messages ----------------------------------------------------------------------------------


def test_system_and_messages_map_to_tgi_roles_in_order() -> None:
    request = req(
        Message.user("Q1"),
        Message.assistant("A1"),
        Message.developer("Be terse."),
        Message.user("Q2"),
        system="You answer questions.",
    )
    assert body(request)["messages"] == [
        {"role": "system", "content": "You answer questions."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "system", "content": "Be terse."},  # TGI's templates know no developer role
        {"role": "user", "content": "Q2"},
    ]


def test_multi_part_content_is_sent_as_chunks_with_images_by_url_or_data() -> None:
    image = ImagePart(media_type="image/png", url="https://example.com/cat.png")
    inline = ImagePart(media_type="image/png", data="aGVsbG8=")
    request = req(Message.user([TextPart("What is this?"), image, inline]))
    assert body(request)["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
    ]


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (Message.assistant([ThinkingPart("hmm"), TextPart("A")]), "thinking"),
        (Message.tool("call_1", "42"), "tool_call_id"),
        (
            Message.assistant([dspy.lm15.ToolCallPart(id="c1", name="f", input={})]),
            "tool_call_id",
        ),
        (Message.user(ImagePart(media_type="image/png", file_id="file-1")), "URL or inline"),
    ],
)
def test_parts_tgi_cannot_carry_are_refused_with_the_fix(message: Any, match: str) -> None:
    with pytest.raises(lm15.UnsupportedFeatureError, match=match):
        body(req(Message.user("Q"), message))


# ---- config ------------------------------------------------------------------------------------


def test_greedy_is_sent_explicitly_and_recorded_as_an_adaptation() -> None:
    wire = build_wire_request(req(top_p=0.9))
    assert wire.body["temperature"] == 0.0
    assert "top_p" not in wire.body  # greedy decoding: TGI would start sampling on top_p
    assert [(a.field, a.action) for a in wire.adaptations] == [
        ("config.temperature", "defaulted"),
        ("config.top_p", "dropped"),
    ]


def test_sampling_config_maps_onto_the_messages_api() -> None:
    request = req(
        max_tokens=64,
        temperature=0.7,
        top_p=0.9,
        seed=7,
        stop=("\n\n", "END"),
        frequency_penalty=0.5,
        presence_penalty=0.25,
    )
    wire = build_wire_request(request, info=INFO)
    assert wire.body == {
        "model": "tgi",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "max_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n\n", "END"],
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
    }
    assert wire.adaptations == ()
    assert wire.path == "/v1/chat/completions"


def test_json_schema_response_format_becomes_a_tgi_grammar(tgi_schema: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    request = req(
        response_format={"type": "json_schema", "schema": schema, "name": "Out", "strict": True}
    )
    sent = body(request, info=INFO)
    assert sent["response_format"] == {"type": "json", "value": schema}
    tgi_schema("ChatRequest", sent)


def test_any_json_object_becomes_the_object_schema_and_says_so() -> None:
    wire = build_wire_request(req(response_format={"type": "json_object"}))
    assert wire.body["response_format"] == {"type": "json", "value": {"type": "object"}}
    assert ("config.response_format", "substituted") in [
        (a.field, a.action) for a in wire.adaptations
    ]


def test_generate_endpoint_renders_the_prompt_and_maps_top_k_and_grammar(tgi_schema: Any) -> None:
    request = req(
        Message.user("Q?"),
        system="Sys.",
        max_tokens=20,
        temperature=0.5,
        top_k=40,
        response_format={"type": "json_schema", "schema": {"type": "object"}},
    )
    wire = build_wire_request(
        request, endpoint="generate", parameters={"repetition_penalty": 1.1}, info=INFO
    )
    assert wire.path == "/generate"
    assert wire.body == {
        "inputs": "Sys.\n\nQ?\n\nBEGIN RESPONSE:",
        "parameters": {
            "do_sample": True,
            "temperature": 0.5,
            "top_k": 40,
            "max_new_tokens": 20,
            "repetition_penalty": 1.1,
            "details": True,
            "grammar": {"type": "json", "value": {"type": "object"}},
        },
    }
    tgi_schema("GenerateRequest", wire.body)
    streamed = build_wire_request(request, endpoint="generate", stream=True)
    assert streamed.path == "/generate_stream"


def test_a_custom_prompt_format_renders_generate_prompts() -> None:
    def fmt(request: Any) -> str:
        return "<|user|>" + request.messages[-1].text + "<|assistant|>"

    wire = build_wire_request(req(Message.user("Hi")), endpoint="generate", prompt_format=fmt)
    assert wire.body["inputs"] == "<|user|>Hi<|assistant|>"


def test_default_prompt_matches_dspys_text_model_rendering() -> None:
    request = req(Message.user("Q1"), Message.assistant("A1"), Message.user("Q2"), system="S")
    assert default_prompt(request) == "S\n\nQ1\n\nA1\n\nQ2\n\nBEGIN RESPONSE:"


def test_request_values_override_engine_parameters_and_extensions_reach_tgi() -> None:
    request = req(
        max_tokens=10,
        extensions={"adapter_id": "org/lora", "grammar": {"type": "regex", "value": "a+"}},
    )
    sent = body(request, parameters={"max_new_tokens": 99, "frequency_penalty": 0.1})
    assert sent["max_tokens"] == 10
    assert sent["frequency_penalty"] == 0.1
    assert sent["model"] == "org/lora"  # TGI's chat API selects a LoRA adapter through model
    assert sent["response_format"] == {"type": "regex", "value": "a+"}


def test_an_engine_adapter_id_selects_the_lora_adapter_on_both_endpoints() -> None:
    assert body(req(), adapter_id="org/lora")["model"] == "org/lora"
    generate = body(req(), endpoint="generate", adapter_id="org/lora")
    assert generate["parameters"]["adapter_id"] == "org/lora"


@pytest.mark.parametrize(
    ("config", "endpoint", "match"),
    [
        ({"top_k": 5}, "chat", "no top_k"),
        ({"presence_penalty": 0.5}, "generate", "no presence_penalty"),
        ({"reasoning": dspy.lm15.Reasoning(effort="low")}, "chat", "reasoning"),
        ({"service_tier": "flex"}, "chat", "service tiers"),
        ({"user_id": "u1"}, "chat", "end-user id"),
        ({"store": False}, "chat", "stores nothing"),
        ({"extensions": {"logit_bias": {"1": 5}}}, "chat", "logit_bias"),
        ({"extensions": {"repetition_penalty": 1.2}}, "chat", "repetition_penalty"),
        ({"logprobs": 2}, "generate", "top alternatives"),
        ({"tool_choice": ToolChoice(mode="required")}, "generate", "no tools"),
    ],
)
def test_what_tgi_cannot_carry_is_refused_before_any_network_call(
    config: dict[str, Any], endpoint: Any, match: str
) -> None:
    with pytest.raises(lm15.UnsupportedFeatureError, match=match):
        build_wire_request(req(**config), endpoint=endpoint)


def test_values_tgi_would_reject_raise_invalid_request_naming_the_limit() -> None:
    with pytest.raises(lm15.InvalidRequestError, match="at most 4"):
        build_wire_request(req(stop=("a", "b", "c", "d", "e")), info=INFO)
    with pytest.raises(lm15.InvalidRequestError, match="leaves no room for the prompt"):
        build_wire_request(req(max_tokens=5000), info=INFO)


def test_parameter_sets_leave_dspy_owned_keys_to_the_request() -> None:
    assert {"response_format", "tools", "logprobs"}.isdisjoint(CHAT_PARAMETERS)
    assert {"best_of", "details"}.isdisjoint(GENERATE_PARAMETERS)
    assert {"grammar", "adapter_id"} <= CHAT_PARAMETERS & GENERATE_PARAMETERS
    assert "repetition_penalty" in GENERATE_PARAMETERS


def test_tools_and_tool_choice_map_to_tgi_function_tools() -> None:
    weather = FunctionTool(
        name="get_weather",
        description="Weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    request = req(
        tools=(weather,), tool_choice=ToolChoice(mode="required", allowed=("get_weather",))
    )
    sent = body(request)
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "description": "Weather for a city",
            },
        }
    ]
    # (TGI's openapi.json names the schema "arguments"; its router reads OpenAI's "parameters" as
    # an alias, and "parameters" is what every OpenAI client sends)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body(req(tools=(weather,), tool_choice=ToolChoice(mode="auto")))["tool_choice"] == "auto"


def test_logprobs_ask_tgi_for_token_logprobs() -> None:
    sent = body(req(logprobs=3))
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 3)
    assert "top_logprobs" not in body(req(logprobs=0))


def test_logprobs_are_refused_on_streams_which_do_not_carry_them() -> None:
    for endpoint in ("chat", "generate"):
        with pytest.raises(lm15.UnsupportedFeatureError, match="stream=False"):
            build_wire_request(req(logprobs=0), endpoint=endpoint, stream=True)


def test_streaming_bodies_ask_for_the_usage_chunk() -> None:
    sent = body(req(), stream=True, info=INFO)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


# ---- responses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tgi", "lm15_reason"),
    [
        ("stop", "stop"),
        ("eos_token", "stop"),
        ("stop_sequence", "stop"),
        ("length", "length"),
    ],
)
def test_chat_responses_map_text_finish_reason_and_usage(tgi: str, lm15_reason: str) -> None:
    data = {
        "id": "",
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": tgi}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
    response = chat_response(json.dumps(data).encode(), request=req(), replica="http://r1")
    assert response.text == "Paris"
    assert response.finish_reason == lm15_reason
    assert (response.usage.input_tokens, response.usage.output_tokens) == (9, 2)
    assert response.usage.total_tokens == 11
    assert response.model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert response.id is None
    assert response.provider_data == {
        "tgi": {"endpoint": "/v1/chat/completions", "replica": "http://r1", "finish_reason": tgi}
    }


def test_a_recorded_tgi_tool_call_becomes_a_tool_call_part() -> None:
    snapshot = (
        OPENAPI.parent
        / "snapshots"
        / "test_tools_llama"
        / "test_flash_llama_grammar_tools_choice_nostream.json"
    )
    response = chat_response(snapshot.read_bytes(), request=req())
    (call,) = response.tool_calls
    assert (call.name, call.input) == (
        "get_current_weather",
        {"location": "Brooklyn, NY", "format": "fahrenheit"},
    )
    assert response.finish_reason == "tool_call"
    assert response.usage.total_tokens == 315


def test_chat_logprobs_become_token_logprobs() -> None:
    data = {
        "choices": [
            {
                "message": {"role": "assistant", "content": "Hi"},
                "finish_reason": "length",
                "logprobs": {
                    "content": [
                        {
                            "token": "Hi",
                            "logprob": -0.25,
                            "top_logprobs": [{"token": "Hi", "logprob": -0.25}],
                        }
                    ]
                },
            }
        ]
    }
    (token,) = chat_response(data, request=req(logprobs=1)).logprobs
    assert (token.token, token.logprob, token.top[0].token) == ("Hi", -0.25, "Hi")


def test_a_body_that_is_not_a_chat_completion_is_a_malformed_response() -> None:
    with pytest.raises(errors.MalformedResponseError):
        chat_response(b"<html>bad gateway</html>", request=req())
    with pytest.raises(errors.MalformedResponseError):
        chat_response({"object": "chat.completion"}, request=req())


def test_generate_responses_map_finish_reason_usage_and_logprobs() -> None:
    generated = parse_generate_response(
        '{"generated_text": " Paris", "details": {"finish_reason": "eos_token", '
        '"generated_tokens": 2, "seed": null, "prefill": [], "tokens": ['
        '{"id": 1, "text": " Paris", "logprob": -0.5, "special": false},'
        '{"id": 2, "text": "</s>", "logprob": -0.1, "special": true}]}}'
    )
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    response = generate_response(
        generated, request=req(), usage=usage, model="m", replica="http://r", logprobs=True
    )
    assert (response.text, response.finish_reason, response.model) == (" Paris", "stop", "m")
    assert response.usage.total_tokens == 7
    assert [(t.token, t.logprob, t.token_id) for t in response.logprobs] == [(" Paris", -0.5, 1)]
    bare = generate_response(generated, request=req())
    assert (bare.usage.output_tokens, bare.usage.input_tokens, bare.logprobs) == (2, None, None)


# ---- streams -----------------------------------------------------------------------------------


def test_chat_stream_chunks_become_start_deltas_and_end_with_usage() -> None:
    mapper = ChatStreamMapper(model="tgi/smol")
    chunks = [
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":"Pa"},"finish_reason":null}]}',
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":"ris"},'
        '"finish_reason":"length"}]}',
        '{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}',
    ]
    events = [e for c in chunks for e in mapper.feed(parse_chat_chunk(c))] + mapper.finish()
    assert [e.type for e in events] == ["start", "delta", "delta", "end"]
    assert "".join(e.delta.text for e in events if e.type == "delta") == "Paris"
    assert events[-1].finish_reason == "length"
    assert events[-1].usage.total_tokens == 6
    assert lm15.materialize_response(iter(events), req()).text == "Paris"


def test_a_chat_stream_without_a_finish_reason_is_malformed() -> None:
    mapper = ChatStreamMapper(model="tgi/smol")
    mapper.feed(parse_chat_chunk('{"choices":[{"delta":{"content":"Pa"},"finish_reason":null}]}'))
    with pytest.raises(errors.MalformedResponseError, match="finish_reason"):
        mapper.finish()


def test_generate_stream_events_skip_special_tokens_and_end_with_details() -> None:
    mapper = GenerateStreamMapper(model="tgi/smol")
    raw = [
        '{"index":1,"token":{"id":1,"text":" Pa","logprob":-0.1,"special":false},'
        '"generated_text":null,"details":null}',
        '{"index":2,"token":{"id":2,"text":"</s>","logprob":0.0,"special":true},'
        '"generated_text":" Pa","details":{"finish_reason":"eos_token","generated_tokens":2,'
        '"seed":null,"input_length":5}}',
    ]
    events = [e for r in raw for e in mapper.feed(parse_stream_event(r))]
    assert [e.type for e in events] == ["start", "delta", "end"]
    assert events[-1].finish_reason == "stop"
    assert (events[-1].usage.input_tokens, events[-1].usage.total_tokens) == (5, 7)


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected", "retryable"),
    [
        (errors.ContextWindowExceededError("too long", status=422), "ContextLengthError", False),
        (errors.ValidationError("bad top_p", status=422), "InvalidRequestError", False),
        (errors.OverloadedError("overloaded", status=429, retry_after=1.5), "RateLimitError", True),
        (errors.UnavailableError("starting", status=503), "ServerError", True),
        (errors.GenerationError("cuda oom", status=424), "ServerError", True),
        (errors.IncompleteGenerationError("cut", status=500), "ServerError", True),
        (errors.MalformedResponseError("not json"), "ServerError", True),
        (errors.TGITimeoutError("timed out"), "TimeoutError", True),
        (errors.ConnectError("refused"), "TransportError", True),
        (errors.NoHealthyReplicaError("all ejected"), "TransportError", True),
        (errors.ServerError("forbidden", status=403), "AuthError", False),
        (errors.ServerError("not found", status=404), "ProviderError", False),
        (errors.InvalidRequestError("top_p must be < 1"), "InvalidRequestError", False),
    ],
)
def test_tgispy_errors_map_to_the_lm15_class_dspy_retries_by(
    error: Exception, expected: str, retryable: bool
) -> None:
    from dspy.clients.errors import wrap_error
    from dspy.utils.exceptions import is_retryable_lm_error

    mapped = to_lm15_error(error)
    assert type(mapped) is getattr(lm15, expected)
    assert mapped.provider == "tgi"
    assert str(error).split(" (")[0] in str(mapped)
    assert is_retryable_lm_error(wrap_error(mapped, model="tgi/smol")) is retryable


def test_an_exhausted_fleet_maps_by_its_last_attempt_and_keeps_retry_after() -> None:
    last = errors.OverloadedError("overloaded", status=429, retry_after=2.0, replica="http://b")
    exhausted = errors.AllReplicasFailedError(
        "all 2 attempts failed on 2 replicas",
        errors={"http://a": "429", "http://b": "429"},
        status=429,
    )
    exhausted.__cause__ = last
    mapped = to_lm15_error(exhausted)
    assert type(mapped) is lm15.RateLimitError
    assert (mapped.status, mapped.retry_after, mapped.provider_code) == (429, 2.0, None)
    assert "http://a" in str(mapped)  # every replica's error stays in the message
