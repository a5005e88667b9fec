"""The DSPy 3.4 engines on every dialect: vLLM, SGLang, Ollama and OpenAI-compatible doubles.

The doubles (tests/engines/doubles.py) enforce each engine's documented request rules and answer
in its shapes; DSPy 3.4 programs (Predict, ChainOfThought, JSONAdapter, streaming, ``n``) run on
them through ``dspy.LM(engine=...)`` and :class:`tgispy.testing.MockTransport`. The real llama.cpp
server is exercised in test_dspy_engine_dialects_llamacpp.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ._gate import import_dspy

dspy = import_dspy()

from dspy import lm15  # noqa: E402
from dspy.lm15 import Config, Message, Request  # noqa: E402
from dspy.utils.exceptions import LMInvalidRequestError  # noqa: E402

from engines import doubles  # noqa: E402  (tests/ is on sys.path: rootdir packages)
from tgispy.errors import ConfigError  # noqa: E402
from tgispy.integrations.dspy import (  # noqa: E402
    AsyncTGIEngine,
    RetryPolicy,
    TGIEngine,
    fleet_lm,
    tgi_lm,
)
from tgispy.testing import MockTransport, Recorded, Reply  # noqa: E402

from ._scripted import Oracle, chat_adapter_text  # noqa: E402

pytestmark = pytest.mark.usefixtures("dspy_memory_cache")

ORACLE = Oracle({"Capital of France?": "Paris", "Capital of Italy?": "Rome", "2+2?": "4"})


def respond(source: Any, body: dict[str, Any]) -> str:
    """A double's model: DSPy's ChatAdapter sections answering the last question (a plain
    prompt gets a plain answer)."""
    if "Your output fields are:" not in str(source):
        return "Paris! It is in France."
    return chat_adapter_text(ORACLE.fields(body))


def posts(transport: MockTransport) -> list[Recorded]:
    return [r for r in transport.requests if r.method == "POST"]


def gets(transport: MockTransport) -> list[str]:
    return [r.path for r in transport.requests if r.method == "GET"]


def request(text: str = "Capital of France?", **config: Any) -> Any:
    return Request(model="hosted_vllm/m", messages=(Message.user(text),), config=Config(**config))


class Arith(dspy.Signature):
    """Answer with a number."""

    question: str = dspy.InputField()
    answer: int = dspy.OutputField()


# ---- vLLM --------------------------------------------------------------------------------------
def vllm_lm(**kwargs: Any) -> tuple[Any, MockTransport]:
    transport = MockTransport(doubles.vllm(respond, model="m"))
    lm = tgi_lm(
        "hosted_vllm/m",
        ["http://vllm-a.test:8000/v1", "http://vllm-b.test:8000/v1"],
        engine="vllm",
        transport=transport,
        cache=False,
        **kwargs,
    )
    return lm, transport


def test_vllm_predict_sends_vllms_request_and_reports_usage() -> None:
    lm, transport = vllm_lm(max_tokens=64)
    assert lm.engine.urls == ("http://vllm-a.test:8000", "http://vllm-b.test:8000")
    with dspy.context(lm=lm):
        pred = dspy.Predict("question -> answer")(question="Capital of France?")
    assert pred.answer == "Paris"
    (sent,) = posts(transport)
    assert sent.path == "/v1/chat/completions"
    body = sent.json
    assert body["model"] == "m"  # DSPy's provider prefix is not the served model id
    assert (body["temperature"], body["max_tokens"]) == (0.0, 64)
    assert "stream" not in body and "n" not in body
    assert gets(transport).count("/v1/models") == 2  # each replica's model list, once
    entry = lm.history[-1]
    assert entry["usage"]["prompt_tokens"] == 9 and entry["usage"]["total_tokens"] == 11
    assert entry["response"].provider_data["vllm"]["replica"] == sent.replica


def test_vllm_structured_output_goes_in_structured_outputs() -> None:
    lm, transport = vllm_lm()
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = dspy.Predict(Arith)(question="2+2?")
    assert pred.answer == 4  # the double's constrained decoding: an example of the schema
    (sent,) = posts(transport)
    schema = sent.json["structured_outputs"]["json"]
    assert schema["properties"]["answer"]["type"] == "integer"
    assert "response_format" not in sent.json and "guided_json" not in sent.json


def test_vllm_a_model_it_does_not_serve_fails_before_generating() -> None:
    lm, transport = vllm_lm(served_model="llama")
    with pytest.raises(LMInvalidRequestError, match=r"serves \['m'\], not model='llama'"):
        lm("Capital of France?")
    assert posts(transport) == []


def test_vllm_n_is_fanned_out_by_dspy_and_stop_strings_are_cut() -> None:
    lm, transport = vllm_lm(temperature=0.7)
    outputs = lm("Capital of France?", n=3, stop=["!"])
    assert outputs == ["Paris"] * 3
    assert len(posts(transport)) == 3  # one DSPy request per candidate
    assert {r.replica for r in posts(transport)} <= {
        "http://vllm-a.test:8000",
        "http://vllm-b.test:8000",
    }
    responses = lm.history[-1]["response"]  # DSPy keeps one Response per candidate
    assert [r.provider_data["vllm"]["matched_stop"] for r in responses] == ["!"] * 3


# ---- SGLang ------------------------------------------------------------------------------------
def test_sglang_chain_of_thought_and_json_schema_as_a_string() -> None:
    transport = MockTransport(doubles.sglang(respond))
    lm = fleet_lm(
        "sglang/default", "http://sglang.test:30000", engine="sglang", transport=transport
    )
    with dspy.context(lm=lm):
        pred = dspy.ChainOfThought("question -> answer")(question="Capital of Italy?")
    assert pred.answer == "Rome" and "Capital of Italy?" in pred.reasoning
    first = posts(transport)[0].json
    assert first["top_k"] == -1  # SGLang's "off" (0 is a 400 there)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        assert dspy.Predict(Arith)(question="2+2?").answer == 4
    schema = json.loads(posts(transport)[-1].json["json_schema"])
    assert schema["properties"]["answer"]["type"] == "integer"


# ---- Ollama ------------------------------------------------------------------------------------
def ollama_lm(**kwargs: Any) -> tuple[Any, MockTransport]:
    transport = MockTransport(doubles.ollama(respond))
    lm = tgi_lm(
        "ollama_chat/llama3.2", "http://127.0.0.1:11434", engine="ollama", transport=transport,
        cache=False, **kwargs,
    )  # fmt: skip
    return lm, transport


def test_ollama_predict_speaks_the_native_api_with_options() -> None:
    lm, transport = ollama_lm(max_tokens=32, parameters={"num_ctx": 4096})
    with dspy.context(lm=lm):
        assert dspy.Predict("question -> answer")(question="Capital of Italy?").answer == "Rome"
    (sent,) = posts(transport)
    assert sent.path == "/api/chat"
    assert sent.json["model"] == "llama3.2" and sent.json["stream"] is False
    assert sent.json["options"] == {"num_predict": 32, "temperature": 0.0, "num_ctx": 4096}
    assert lm.history[-1]["usage"]["total_tokens"] == 11


def test_ollama_structured_output_is_its_format_field() -> None:
    lm, transport = ollama_lm()
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        assert dspy.Predict(Arith)(question="2+2?").answer == 4
    fmt = posts(transport)[-1].json["format"]
    assert fmt["properties"]["answer"]["type"] == "integer"


@pytest.mark.parametrize("async_program", [True, False], ids=["async-engine", "sync-engine"])
async def test_ollama_streams_ndjson_through_dspy_streamify(async_program: bool) -> None:
    lm, transport = ollama_lm()
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    program = dspy.streamify(
        dspy.Predict("question -> answer"),
        stream_listeners=[listener],
        is_async_program=async_program,
    )
    chunks, final = [], None
    with dspy.context(lm=lm):
        async for value in program(question="Capital of France?"):
            if isinstance(value, dspy.Prediction):
                final = value
            elif isinstance(value, dspy.streaming.StreamResponse):
                chunks.append(value.chunk)
    assert final is not None and final.answer == "Paris"
    assert "".join(chunks).strip() == "Paris"
    (sent,) = posts(transport)
    assert sent.json["stream"] is True


def test_the_sync_engine_streams_lm15_events_with_usage() -> None:
    transport = MockTransport(doubles.ollama(lambda source, body: "Paris is lovely"))
    engine = TGIEngine(
        "http://127.0.0.1:11434", engine="ollama", served_model="llama3.2", transport=transport
    )
    events = list(engine.stream(request()))
    assert [e.type for e in events] == ["start", "delta", "delta", "delta", "end"]
    assert "".join(e.delta.text for e in events if e.type == "delta") == "Paris is lovely"
    assert events[-1].finish_reason == "stop" and events[-1].usage.total_tokens == 11


# ---- generic OpenAI-compatible servers, errors -------------------------------------------------
def openai_handler(content: str, status: int = 200, **headers: str) -> Any:
    def handle(req: Recorded) -> Reply:
        if req.method == "GET":
            return Reply(200, {"object": "list", "data": [{"id": "gpt-x", "owned_by": "me"}]})
        if status != 200:
            return Reply(status, {"error": {"message": content, "type": "x"}}, headers=headers)
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": content}}  # fmt: skip
        usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6,
                 "prompt_tokens_details": {"cached_tokens": 4}}  # fmt: skip
        return Reply(200, {"model": "gpt-x", "choices": [choice], "usage": usage})

    return handle


async def test_an_openai_compatible_server_answers_with_cached_token_usage() -> None:
    transport = MockTransport(openai_handler("Paris"))
    engine = AsyncTGIEngine("https://api.example/v1", engine="openai", transport=transport)
    response = await engine.complete(request(max_tokens=4, top_p=0.9))
    assert (response.text, response.finish_reason, response.model) == ("Paris", "stop", "gpt-x")
    assert response.usage.cache_read_tokens == 4
    (sent,) = posts(transport)
    assert sent.path == "/v1/chat/completions" and "top_k" not in sent.json
    assert sent.json["top_p"] == 0.9
    assert "Authorization" not in sent.headers  # HF_TOKEN is only ever sent to TGI


async def test_an_engine_that_ignores_the_constraint_does_not_go_unnoticed() -> None:
    transport = MockTransport(openai_handler("Sure! The answer is 4."))
    engine = AsyncTGIEngine(
        "http://127.0.0.1:8000", engine="openai", transport=transport, retry=RetryPolicy.none()
    )
    schema = {"type": "json_schema", "schema": {"type": "object"}}
    with pytest.raises(lm15.ServerError, match="ignored the constraint"):
        await engine.complete(request(response_format=schema))
    assert posts(transport)[0].json["response_format"]["json_schema"]["schema"] == {
        "type": "object"
    }


async def test_engine_errors_map_to_lm15_classes_dspy_retries_by() -> None:
    busy = MockTransport(openai_handler("slow down", 429, **{"Retry-After": "2"}))
    engine = AsyncTGIEngine(
        "http://127.0.0.1:8000", engine="vllm", served_model="gpt-x", transport=busy,
        retry=RetryPolicy.none(),
    )  # fmt: skip
    with pytest.raises(lm15.RateLimitError) as caught:
        await engine.complete(request())
    assert caught.value.retry_after == 2.0 and caught.value.provider == "vllm"
    long = MockTransport(doubles.vllm(respond, model="m", max_model_len=10))
    engine = AsyncTGIEngine("http://127.0.0.1:8000", engine="vllm", transport=long)
    with pytest.raises(lm15.ContextLengthError):
        await engine.complete(request("a question far longer than ten tokens"))


async def test_what_a_dialect_cannot_carry_is_refused_before_any_request() -> None:
    transport = MockTransport(doubles.ollama(respond))
    engine = AsyncTGIEngine("http://127.0.0.1:11434", engine="ollama", transport=transport)
    with pytest.raises(lm15.UnsupportedFeatureError, match="logprobs"):
        await engine.complete(request(logprobs=0))
    tool = lm15.FunctionTool(name="search", description="d", parameters={"type": "object"})
    with pytest.raises(lm15.UnsupportedFeatureError, match="tools"):
        await engine.complete(
            Request(model="m", messages=(Message.user("hi"),), tools=(tool,), config=Config())
        )
    assert transport.requests == []


# ---- detection, configuration, saving --------------------------------------------------------
@pytest.mark.parametrize(
    ("double", "dialect", "path"),
    [
        (doubles.vllm(respond, model="m"), "vllm", "/v1/chat/completions"),
        (doubles.ollama(respond, models=("m",)), "ollama", "/api/chat"),
    ],
    ids=["vllm", "ollama"],
)
def test_auto_probes_once_and_speaks_the_engine_found(double: Any, dialect: str, path: str) -> None:
    transport = MockTransport(double)
    lm = fleet_lm("openai/m", "http://127.0.0.1:9000", transport=transport, cache=False)
    assert lm.engine.dialect == "auto"
    with dspy.context(lm=lm):
        assert dspy.Predict("question -> answer")(question="Capital of France?").answer == "Paris"
        probes = gets(transport)
        assert dspy.Predict("question -> answer")(question="Capital of Italy?").answer == "Rome"
    assert lm.engine.dialect == dialect
    assert {r.path for r in posts(transport)} == {path}
    assert probes and gets(transport) == probes  # probed once, not per call


def test_auto_refuses_a_fleet_of_mixed_engines() -> None:
    vllm, ollama = doubles.vllm(respond, model="m"), doubles.ollama(respond, models=("m",))
    transport = MockTransport(lambda req: (vllm if "vllm" in req.replica else ollama)(req))
    lm = fleet_lm("m", ["http://vllm.test:8000", "http://ollama.test:11434"], transport=transport)
    with pytest.raises(LMInvalidRequestError, match=r"different engines.*vllm.*ollama"):
        lm("Capital of France?")
    assert posts(transport) == []


def test_a_declared_engine_the_server_contradicts_fails_before_generating() -> None:
    transport = MockTransport(doubles.sglang(respond))
    lm = tgi_lm("default", "http://127.0.0.1:30000", engine="vllm", transport=transport)
    with pytest.raises(LMInvalidRequestError, match=r"engine='vllm' was declared.*'sglang'"):
        lm("Capital of France?")
    assert posts(transport) == []


def test_the_generate_endpoint_uses_the_completions_route() -> None:
    lm, transport = vllm_lm(endpoint="generate", max_tokens=16)
    assert lm("Capital of France?", stop=["!"]) == ["Paris"]
    (sent,) = posts(transport)
    assert sent.path == "/v1/completions"
    assert sent.json["prompt"] == "Capital of France?\n\nBEGIN RESPONSE:"


def test_bad_configurations_fail_at_construction() -> None:
    with pytest.raises(ConfigError, match="unknown engine 'vlm'"):
        AsyncTGIEngine("http://127.0.0.1:8000", engine="vlm")
    with pytest.raises(ConfigError, match="adapter_id"):
        AsyncTGIEngine("http://127.0.0.1:8000", engine="vllm", adapter_id="lora")
    with pytest.raises(ConfigError, match=r"\['n'\]"):
        AsyncTGIEngine("http://127.0.0.1:8000", engine="sglang", parameters={"n": 2})
    with pytest.raises(ConfigError, match="disagree"):
        AsyncTGIEngine(["http://a:8000/v1", "http://b:8000/llm"], engine="vllm")


def test_the_dialect_survives_saving_and_loading_a_program(tmp_path: Any) -> None:
    transport = MockTransport(doubles.sglang(respond))
    program = dspy.Predict("question -> answer")
    program.lm = tgi_lm(
        "sglang/default",
        "http://sglang.test:30000/v1",
        engine="sglang",
        served_model="default",
        parameters={"min_p": 0.1},
        transport=transport,
        cache=False,
    )
    program.save(str(tmp_path / "program.json"))
    saved = json.loads((tmp_path / "program.json").read_text())["lm"]
    state = saved["engine"]["state"]
    assert (state["engine"], state["served_model"], state["prefix"]) == ("sglang", "default", "/v1")
    loaded = dspy.Predict("question -> answer")
    loaded.load(str(tmp_path / "program.json"), allow_unsafe_lm_state=True)
    engine = loaded.lm.engine
    assert isinstance(engine, TGIEngine)
    assert (engine.dialect, engine.urls) == ("sglang", ("http://sglang.test:30000",))
    assert engine.aio.served_model == "default" and engine.aio.parameters == {"min_p": 0.1}
    restored = AsyncTGIEngine.load_state(program.lm.engine.dump_state())
    assert restored.dump_state() == program.lm.engine.dump_state()


def test_tgi_stays_the_default_dialect() -> None:
    engine = TGIEngine("http://127.0.0.1:8080")
    assert engine.dialect == "tgi" and "top_k" not in engine.supported_params
    assert (
        AsyncTGIEngine.load_state(
            {k: v for k, v in engine.dump_state().items() if k != "engine"}
        ).dialect
        == "tgi"
    )  # a state saved before engine= existed loads as TGI
    vllm = TGIEngine("http://127.0.0.1:8000", engine="vllm")
    assert {"top_k", "response_format", "seed"} <= vllm.supported_params
    assert vllm.supports_response_schema
