"""The engine dialects, pure: request bodies, responses, streams, errors, limits.

Response, stream and error bodies are the documented shapes (tests/engines/README.md lists the
source of each); llama.cpp's are also checked against the real server in test_llamacpp_server.py.
"""

from __future__ import annotations

import doctest
import json
from typing import Any

import pytest

import tgispy.engines
from tgispy.engines import (
    Constraint,
    Delta,
    Limits,
    LlamaCppDialect,
    OllamaDialect,
    OpenAIDialect,
    Request,
    SGLangDialect,
    VLLMDialect,
    _dialect,
    _errors,
    _gbnf,
    _llamacpp,
    _ollama,
    _openai,
    _sglang,
    _vllm,
    apply_stops,
    dialect_for,
)
from tgispy.errors import (
    ConfigError,
    ContextWindowExceededError,
    MalformedResponseError,
    OverloadedError,
    ServerError,
    UnavailableError,
    ValidationError,
)

OPENAI_FAMILY = [OpenAIDialect(), VLLMDialect(), SGLangDialect(), LlamaCppDialect()]
ALL = [*OPENAI_FAMILY, OllamaDialect()]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def ids(dialects: list[Any]) -> list[str]:
    return [d.name for d in dialects]


@pytest.mark.parametrize(
    "module",
    [tgispy.engines, _dialect, _errors, _gbnf, _llamacpp, _ollama, _openai, _sglang, _vllm],
)
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# ---- requests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ALL, ids=ids(ALL))
@pytest.mark.parametrize("temperature", [0.0, None])
def test_temperature_zero_or_unset_is_sent_as_greedy(dialect: Any, temperature: Any) -> None:
    _, body = dialect.build(Request(model="m", prompt="x", max_tokens=3, temperature=temperature))
    sampling = body.get("options", body)
    assert sampling["temperature"] == 0.0


def test_self_hosted_engines_send_dspy_defaults_explicitly() -> None:
    # Omitted fields take the model's generation_config (vLLM, SGLang chat) or the CLI defaults
    # (llama.cpp top_k 40, top_p 0.95, min_p 0.05): "off" has to be said.
    request = Request(model="m", prompt="x", max_tokens=3, temperature=0.7)
    vllm = VLLMDialect().build(request)[1]
    sglang = SGLangDialect().build(request)[1]
    llama = LlamaCppDialect().build(request)[1]
    openai = OpenAIDialect().build(request)[1]
    assert (vllm["top_p"], vllm["top_k"]) == (1.0, 0)
    assert (sglang["top_p"], sglang["top_k"]) == (1.0, -1)
    assert (llama["top_p"], llama["top_k"], llama["min_p"]) == (1.0, 0, 0.0)
    assert "top_k" not in openai and "top_p" not in openai


def test_generic_openai_sends_top_k_only_when_asked() -> None:
    assert "top_k" not in OpenAIDialect().build(Request(model="m", prompt="x", top_k=0))[1]
    assert OpenAIDialect().build(Request(model="m", prompt="x", top_k=20))[1]["top_k"] == 20


def test_sglang_never_sends_top_k_zero() -> None:
    body = SGLangDialect().build(Request(model="m", prompt="x", top_k=0))[1]
    assert body["top_k"] == -1
    assert SGLangDialect().build(Request(model="m", prompt="x", top_k=5))[1]["top_k"] == 5


def test_routes_and_prefix() -> None:
    chat = Request(model="m", messages=({"role": "user", "content": "hi"},))
    assert VLLMDialect().build(chat)[0] == "/v1/chat/completions"
    assert OpenAIDialect(prefix="").build(chat)[0] == "/chat/completions"
    assert OllamaDialect().build(chat)[0] == "/api/chat"
    assert OllamaDialect().build(Request(model="m", prompt="x"))[0] == "/api/generate"
    assert dialect_for("sglang", prefix="").build(Request(prompt="x"))[0] == "/completions"


def test_unknown_engine_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="vllm, sglang, llamacpp, ollama"):
        dialect_for("tensorrt")


def test_vllm_sends_at_most_four_stops_and_applies_the_rest_to_the_text() -> None:
    stops = ("\n\n", "A:", "B:", "C:", "###")
    request = Request(model="m", prompt="x", stop=stops)
    assert VLLMDialect().build(request)[1]["stop"] == list(stops[:4])
    assert SGLangDialect().build(request)[1]["stop"] == list(stops)
    body = {"choices": [{"index": 0, "text": "4 ### more", "finish_reason": "length"}]}
    choice = VLLMDialect().parse(request, json.dumps(body)).choices[0]
    assert (choice.text, choice.finish_reason, choice.matched_stop) == ("4 ", "stop", "###")


def test_apply_stops_earliest_then_longest() -> None:
    assert apply_stops("a\n\nb", ["\n", "\n\n"]) == ("a", "\n\n")
    assert apply_stops("abc", []) == ("abc", None)
    assert apply_stops("abc", [""]) == ("abc", None)


@pytest.mark.parametrize(
    ("dialect", "n", "temperature", "limits", "expected"),
    [
        (VLLMDialect(), 3, 0.7, None, 3),
        (VLLMDialect(), 3, 0.0, None, 1),  # greedy n>1 is a 400 on vLLM: fan out
        (SGLangDialect(), 3, 0.0, None, 3),
        (OpenAIDialect(), 3, 0.7, None, 3),
        (LlamaCppDialect(), 3, 0.7, None, 1),  # slot count unknown: fan out
        (LlamaCppDialect(), 6, 0.7, Limits(max_n=4), 4),
        (LlamaCppDialect(), 3, 0.7, Limits(max_n=4), 3),
        (OllamaDialect(), 3, 0.7, None, 1),
    ],
)
def test_server_n(dialect: Any, n: int, temperature: float, limits: Any, expected: int) -> None:
    assert dialect.server_n(Request(prompt="x", n=n, temperature=temperature), limits) == expected


def test_n_and_stream_options() -> None:
    body = VLLMDialect().build(Request(model="m", prompt="x", n=3, stream=True))[1]
    assert body["n"] == 3
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "n" not in VLLMDialect().build(Request(model="m", prompt="x"))[1]
    assert OllamaDialect().build(Request(model="m", prompt="x"))[1]["stream"] is False


@pytest.mark.parametrize(
    ("dialect", "constraint", "expected"),
    [
        (
            OpenAIDialect(),
            Constraint("json", SCHEMA),
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": SCHEMA},
                }
            },
        ),
        (VLLMDialect(), Constraint("json", SCHEMA), {"structured_outputs": {"json": SCHEMA}}),
        (
            VLLMDialect(),
            Constraint("choice", ["a", "b"]),
            {"structured_outputs": {"choice": ["a", "b"]}},
        ),
        (SGLangDialect(), Constraint("json", SCHEMA), {"json_schema": json.dumps(SCHEMA)}),
        (SGLangDialect(), Constraint("choice", ["a.b", "c"]), {"regex": "(a\\.b|c)"}),
        (SGLangDialect(), Constraint("grammar", "root ::= x"), {"ebnf": "root ::= x"}),
        (LlamaCppDialect(), Constraint("json", SCHEMA), {"json_schema": SCHEMA}),
        (
            LlamaCppDialect(),
            Constraint("regex", "(yes|no)"),
            {"grammar": 'root ::= ("yes" | "no")'},
        ),
        (
            LlamaCppDialect(),
            Constraint("choice", ["x", 'q"']),
            {"grammar": 'root ::= "x" | "q\\""'},
        ),
        (OllamaDialect(), Constraint("json", SCHEMA), {"format": SCHEMA}),
    ],
)
def test_constraints(dialect: Any, constraint: Constraint, expected: dict[str, Any]) -> None:
    body = dialect.build(Request(model="m", prompt="x", constraint=constraint))[1]
    assert {k: body[k] for k in expected} == expected
    for other in ("guided_json", "guided_regex", "grammar", "response_format", "format"):
        if other not in expected:
            assert other not in body


@pytest.mark.parametrize("dialect", [OpenAIDialect(), OllamaDialect()], ids=["openai", "ollama"])
def test_a_constraint_the_engine_cannot_enforce_fails_before_sending(dialect: Any) -> None:
    with pytest.raises(ConfigError, match=r"cannot constrain .* supports: json"):
        dialect.build(Request(model="m", prompt="x", constraint=Constraint("regex", "[0-9]+")))


def test_ollama_options_and_extras() -> None:
    request = Request(
        model="llama3.2",
        prompt="x",
        max_tokens=8,
        top_p=0.9,
        top_k=20,
        seed=3,
        extra={"num_ctx": 2048, "system": "be brief", "format": "json"},
    )
    _, body = OllamaDialect().build(request)
    assert body["options"] == {
        "num_predict": 8,
        "temperature": 0.0,
        "top_p": 0.9,
        "top_k": 20,
        "seed": 3,
        "num_ctx": 2048,
    }
    assert body["system"] == "be brief" and body["format"] == "json"


# ---- responses ---------------------------------------------------------------------------------
def completion_body(**choice: Any) -> str:
    return json.dumps(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "m",
            "choices": [{"index": 0, "text": "4", "finish_reason": "stop", **choice}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
        }
    )


def test_parse_completion_usage_and_matched_stop() -> None:
    request = Request(model="m", prompt="2+2=", stop=("\n",))
    vllm = VLLMDialect().parse(request, completion_body(stop_reason="\n"))
    assert vllm.choices[0].text == "4" and vllm.choices[0].matched_stop == "\n"
    assert vllm.usage == {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    sglang = SGLangDialect().parse(request, completion_body(matched_stop="\n"))
    assert sglang.choices[0].matched_stop == "\n"
    # a stop token id (int) or null for EOS is no stop string
    assert (
        VLLMDialect().parse(request, completion_body(stop_reason=2)).choices[0].matched_stop is None
    )


def test_parse_chat_orders_choices_by_index_and_reads_cached_tokens() -> None:
    body = {
        "choices": [
            {
                "index": 1,
                "message": {"role": "assistant", "content": "b"},
                "finish_reason": "length",
            },
            {
                "index": 0,
                "message": {"role": "assistant", "content": None},
                "finish_reason": "stop",
            },
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "total_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }
    request = Request(model="m", messages=({"role": "user", "content": "x"},), n=2)
    result = LlamaCppDialect().parse(request, json.dumps(body))
    assert [(c.index, c.text, c.finish_reason) for c in result.choices] == [
        (0, "", "stop"),
        (1, "b", "length"),
    ]
    assert result.usage is not None and result.usage["cached_tokens"] == 4


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"choices": "x"}', b'{"choices": [3]}'])
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        VLLMDialect().parse(Request(prompt="x"), body)


def test_ollama_parse_generate_and_chat() -> None:
    generate = {
        "model": "llama3.1:8b",
        "response": '{"age": 22}',
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 28,
        "eval_count": 16,
        "total_duration": 1075509083,
    }
    result = OllamaDialect().parse(Request(model="m", prompt="x"), json.dumps(generate))
    assert result.choices[0].text == '{"age": 22}' and result.choices[0].finish_reason == "stop"
    assert result.usage == {"prompt_tokens": 28, "completion_tokens": 16, "total_tokens": 44}
    chat = {
        "message": {"role": "assistant", "content": "hi there"},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 3,
        "eval_count": 2,
    }
    request = Request(model="m", messages=({"role": "user", "content": "x"},), stop=(" there",))
    choice = OllamaDialect().parse(request, json.dumps(chat)).choices[0]
    assert (choice.text, choice.finish_reason, choice.matched_stop) == ("hi", "stop", " there")


# ---- streams -----------------------------------------------------------------------------------
def test_openai_stream_events() -> None:
    d = VLLMDialect()
    chat = Request(model="m", messages=({"role": "user", "content": "x"},), stream=True)
    first = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    piece = json.dumps(
        {"choices": [{"index": 0, "delta": {"content": "Par"}, "finish_reason": None}]}
    )
    last = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    assert d.parse_event(chat, first) == [Delta(index=0, text="")]
    assert d.parse_event(chat, piece) == [Delta(index=0, text="Par")]
    assert d.parse_event(chat, last) == [Delta(index=0, finish_reason="stop")]
    assert d.parse_event(chat, usage) == [
        Delta(usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})
    ]
    assert d.parse_event(chat, "[DONE]") == [Delta(done=True)]
    text = Request(model="m", prompt="x", stream=True)
    event = json.dumps({"choices": [{"index": 0, "text": " 4", "finish_reason": None}]})
    assert d.parse_event(text, event) == [Delta(index=0, text=" 4")]


@pytest.mark.parametrize(
    ("dialect", "event", "cls"),
    [
        # vLLM: data: {"error": {...}} then [DONE]
        (
            VLLMDialect(),
            {"error": {"message": "boom", "type": "InternalServerError", "code": 500}},
            ServerError,
        ),
        # SGLang: queue full inside a 200 stream, code 503
        (
            SGLangDialect(),
            {
                "error": {
                    "object": "error",
                    "message": "The request queue is full.",
                    "type": "SERVICE_UNAVAILABLE",
                    "param": None,
                    "code": 503,
                }
            },
            OverloadedError,
        ),
        # llama.cpp: the stream ends after the error, without [DONE]
        (
            LlamaCppDialect(),
            {
                "error": {
                    "code": 400,
                    "message": "request (9000 tokens) exceeds the "
                    "available context size (8192 tokens), try increasing it",
                    "type": "exceed_context_size_error",
                }
            },
            ContextWindowExceededError,
        ),
    ],
)
def test_stream_error_events_raise_typed_errors(dialect: Any, event: Any, cls: type) -> None:
    with pytest.raises(cls):
        dialect.parse_event(Request(model="m", prompt="x", stream=True), json.dumps(event))


def test_ollama_ndjson_lines() -> None:
    d = OllamaDialect()
    request = Request(model="m", prompt="x", stream=True)
    assert d.parse_event(request, '{"model":"m","response":"The","done":false}') == [
        Delta(text="The")
    ]
    end = d.parse_event(
        request,
        json.dumps(
            {
                "model": "m",
                "response": "",
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 4,
                "eval_count": 2,
            }
        ),
    )
    assert end == [
        Delta(
            text="",
            finish_reason="stop",
            done=True,
            usage={"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        )
    ]
    assert d.parse_event(request, "") == []
    with pytest.raises(ServerError, match="invalid format"):
        d.parse_event(request, '{"error": "invalid format"}')


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dialect", "status", "body", "cls", "text"),
    [
        (
            VLLMDialect(),
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 4096 tokens. "
                    "However, your prompt contains 5000 input tokens, which exceeds this limit "
                    "even without any output tokens.",
                    "type": "BadRequestError",
                    "param": "input_tokens",
                    "code": 400,
                }
            },
            ContextWindowExceededError,
            "maximum context length",
        ),
        (
            VLLMDialect(),
            400,
            {
                "error": {
                    "message": "max_tokens=9000 cannot be greater than "
                    "max_model_len=4096. Please request fewer output tokens.",
                    "type": "BadRequestError",
                    "param": "max_tokens",
                    "code": 400,
                }
            },
            ContextWindowExceededError,
            "max_model_len",
        ),
        (
            VLLMDialect(),
            404,
            {
                "error": {
                    "message": "The model `x` does not exist. Valid aliases: m.",
                    "type": "NotFoundError",
                    "param": "model",
                    "code": 404,
                }
            },
            ServerError,
            "GET /v1/models",
        ),
        (
            VLLMDialect(),
            503,
            {
                "error": {
                    "message": "The engine is currently busy and cannot accept new requests.",
                    "type": "Service Unavailable",
                    "code": 503,
                }
            },
            OverloadedError,
            "busy",
        ),
        (VLLMDialect(), 401, {"error": "Unauthorized"}, ServerError, "api_key"),
        (
            SGLangDialect(),
            400,
            {
                "object": "error",
                "message": "The input (5000 tokens) is longer "
                "than the model's context length (4096 tokens).",
                "type": "BadRequest",
                "param": None,
                "code": 400,
            },
            ContextWindowExceededError,
            "context length",
        ),
        (
            SGLangDialect(),
            400,
            {
                "object": "error",
                "message": "Failed to compile json_schema grammar: x",
                "type": "BadRequest",
                "param": None,
                "code": 400,
            },
            ValidationError,
            "json_schema",
        ),
        (
            LlamaCppDialect(),
            400,
            {
                "error": {
                    "code": 400,
                    "message": "Field 'n_cmpl': Value must be between 1 <= value <= 4, but got 8",
                    "type": "invalid_request_error",
                }
            },
            ValidationError,
            "n_cmpl",
        ),
        (
            LlamaCppDialect(),
            503,
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
            UnavailableError,
            "Loading model",
        ),
        (OllamaDialect(), 404, {"error": "model 'llama9' not found"}, ServerError, "ollama pull"),
        (
            OllamaDialect(),
            503,
            {"error": "server busy, please try again.  maximum pending requests exceeded"},
            OverloadedError,
            "server busy",
        ),
        (
            OllamaDialect(),
            400,
            {
                "error": "the prompt is longer than the context length currently "
                "available to the model"
            },
            ContextWindowExceededError,
            "context length",
        ),
    ],
)
def test_error_bodies(dialect: Any, status: int, body: Any, cls: type, text: str) -> None:
    err = dialect.error(status, json.dumps(body).encode(), replica="http://r:1")
    assert type(err) is cls
    assert text in str(err) and err.status == status and err.replica == "http://r:1"
    assert err.retryable == (cls in (OverloadedError, UnavailableError))


def test_plain_text_and_empty_error_bodies() -> None:
    err = VLLMDialect().error(502, b"<html>Bad Gateway</html>")
    assert isinstance(err, UnavailableError) and "Bad Gateway" in err.message
    assert "empty body" in OllamaDialect().error(500, b"").message


# ---- limits ------------------------------------------------------------------------------------
def test_limits_from_v1_models() -> None:
    vllm = {
        "object": "list",
        "data": [
            {
                "id": "meta-llama/Llama-3.1-8B",
                "object": "model",
                "created": 1,
                "owned_by": "vllm",
                "root": "/models/llama",
                "parent": None,
                "max_model_len": 8192,
            }
        ],
    }
    limits = VLLMDialect().parse_limits(json.dumps(vllm))
    assert limits.models == ("meta-llama/Llama-3.1-8B",) and limits.context_length == 8192
    assert limits.extra["owned_by"] == ["vllm"]
    assert OpenAIDialect().parse_limits(b'{"data": null}').models == ()


def test_limits_from_llamacpp_props() -> None:
    props = {
        "default_generation_settings": {"n_ctx": 2048, "params": {}},
        "total_slots": 4,
        "model_alias": "smollm2",
        "model_path": "/m.gguf",
        "build_info": "b6000-0c1e5709",
    }
    limits = LlamaCppDialect().parse_limits(json.dumps(props))
    assert (limits.context_length, limits.max_n, limits.models) == (2048, 4, ("smollm2",))
    assert limits.version == "b6000-0c1e5709"


def test_limits_from_ollama_show() -> None:
    show = {
        "parameters": 'num_ctx                        8192\nstop "<|eot_id|>"',
        "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        "capabilities": ["completion", "tools"],
    }
    limits = OllamaDialect().parse_limits(json.dumps(show))
    assert limits.context_length == 8192 and limits.max_n == 1
    assert limits.extra["trained_context_length"] == 131072
    assert OllamaDialect().show_request("m") == ("/api/show", {"model": "m"})
