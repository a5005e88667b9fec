"""HFClientTGI over real HTTP against scripted TGI servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tgispy.errors import (
    ConfigError,
    GenerationError,
    IncompleteGenerationError,
    InvalidRequestError,
    MalformedResponseError,
    OverloadedError,
    TGIError,
    ValidationError,
)
from tgispy.lm._tgi import HFClientTGI
from tgispy.testing import Recorded, Reply, ScriptedTGI
from tgispy.tgi._policy import RetryPolicy

OPENAPI = json.loads((Path(__file__).parent.parent / "tgi" / "data" / "openapi.json").read_text())


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}


def _assert_valid_generate(body: Any) -> None:
    jsonschema.validate(body, _schema("GenerateRequest"))


@pytest.fixture
def server() -> Iterator[ScriptedTGI]:
    with ScriptedTGI([Reply.generate("Paris")]) as srv:
        yield srv


def make(server: ScriptedTGI | list[ScriptedTGI], **kw: Any) -> HFClientTGI:
    servers = server if isinstance(server, list) else [server]
    kw.setdefault("cache", False)
    return HFClientTGI(
        model="test/model",
        port=[s.port for s in servers],
        url="http://127.0.0.1",
        **kw,
    )


def generate_requests(server: ScriptedTGI) -> list[Recorded]:
    return [r for r in server.requests if r.path == "/generate"]


def test_seed_constructor_and_defaults() -> None:
    lm = HFClientTGI(model="meta-llama/Llama-2-7b-hf", port=8080, url="http://localhost")
    assert lm.model == "meta-llama/Llama-2-7b-hf"
    assert lm.kwargs == {
        "temperature": 0.01,
        "max_tokens": 75,
        "top_p": 0.97,
        "n": 1,
        "stop": ["\n", "\n\n"],
    }
    assert lm.ports == [8080]
    assert lm.urls == ("http://localhost:8080",)
    lm2 = HFClientTGI("m", [8080, 8081, 8082], "http://localhost", None, max_tokens=10)
    assert lm2.urls == tuple(f"http://localhost:{p}" for p in (8080, 8081, 8082))
    assert lm2.kwargs["max_tokens"] == 10


def test_generate_returns_seed_shape_and_sends_valid_body(server: ScriptedTGI) -> None:
    lm = make(server)
    out = lm._generate(prompt="What is the capital of Paris?")
    assert out == {"prompt": "What is the capital of Paris?", "choices": [{"text": "Paris"}]}
    (req,) = generate_requests(server)
    _assert_valid_generate(req.json)
    params = req.json["parameters"]
    assert req.json["inputs"] == "What is the capital of Paris?"
    assert params["max_new_tokens"] == 75
    assert params["stop"] == ["\n", "\n\n"]
    assert "n" not in params and "model" not in params


def test_call_returns_texts_and_records_history(server: ScriptedTGI) -> None:
    lm = make(server)
    assert lm("Q?") == ["Paris"]
    entry = lm.history[-1]
    assert entry["prompt"] == "Q?"
    assert entry["response"] == {"prompt": "Q?", "choices": [{"text": "Paris"}]}
    assert entry["replica"] == server.url
    assert entry["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert entry["latency"] > 0
    assert entry["kwargs"]["max_tokens"] == 75


def test_best_of_sequences_become_choices() -> None:
    with ScriptedTGI([Reply.generate("a", best_of=["b"], finish_reason="eos_token")]) as srv:
        lm = make(srv)
        out = lm._generate("p", n=2, temperature=0.7)
        assert out["choices"] == [{"text": "a"}, {"text": "b"}]
        params = generate_requests(srv)[0].json["parameters"]
        assert params["best_of"] == 2
        assert params["do_sample"] is True
        assert params["details"] is True
        _assert_valid_generate(generate_requests(srv)[0].json)


def test_greedy_when_temperature_zero(server: ScriptedTGI) -> None:
    lm = make(server)
    lm("p", temperature=0.0)
    params = generate_requests(server)[-1].json["parameters"]
    assert params["do_sample"] is False
    assert "temperature" not in params and "top_p" not in params


def test_validation_before_network(server: ScriptedTGI) -> None:
    lm = make(server)
    with pytest.raises(InvalidRequestError, match="top_p"):
        lm("p", top_p=1.5)
    with pytest.raises(InvalidRequestError):
        lm("p", temperature=-1)
    with pytest.raises(InvalidRequestError, match="best_of"):
        lm("p", n=5, temperature=0.7)  # server max_best_of is 2 (from /info)
    assert generate_requests(server) == []


def test_bad_http_request_kwargs_named() -> None:
    with pytest.raises(ConfigError, match="proxies"):
        HFClientTGI("m", 8080, "http://localhost", {"proxies": {}})
    with pytest.raises(ConfigError):
        HFClientTGI("m", 8080, "http://localhost", {"timeout": -1})


def test_422_is_not_retried() -> None:
    with ScriptedTGI([Reply.error(422, "Input validation error: bad", "validation")]) as srv:
        lm = make(srv)
        with pytest.raises(ValidationError) as info:
            lm("p")
        assert info.value.status == 422
        assert info.value.replica == srv.url
        assert len(generate_requests(srv)) == 1


@pytest.mark.parametrize(
    ("reply", "exc"),
    [
        (Reply.error(424, "Request failed during generation: oom", "generation"), GenerationError),
        (Reply.error(429, "Model is overloaded", "overloaded"), OverloadedError),
        (
            Reply.error(500, "Incomplete generation", "incomplete_generation"),
            IncompleteGenerationError,
        ),
        (Reply(200, b"<html>not json</html>"), MalformedResponseError),
    ],
)
def test_errors_are_typed_and_carry_replica(reply: Reply, exc: type[TGIError]) -> None:
    with ScriptedTGI([reply]) as srv:
        lm = make(srv, retry=RetryPolicy.none())
        with pytest.raises(exc) as info:
            lm("p")
        assert info.value.replica == srv.url
        assert pickle.loads(pickle.dumps(info.value)).replica == srv.url


def test_429_fails_over_to_other_replica() -> None:
    with (
        ScriptedTGI([Reply.error(429, "Model is overloaded", "overloaded")]) as busy,
        ScriptedTGI([Reply.generate("ok")]) as good,
    ):
        lm = make([busy, good])
        for _ in range(6):
            assert lm("p") == ["ok"]
        assert len(generate_requests(good)) == 6


def test_cache_hits_skip_the_network_and_errors_are_not_cached(tmp_path: Path) -> None:
    from tgispy.cache import DiskCache, LMCache, MemoryCache

    cache = LMCache(memory=MemoryCache(), disk=DiskCache(tmp_path))
    with ScriptedTGI(
        [Reply.error(422, "Input validation error: x", "validation"), Reply.generate("fine")]
    ) as srv:
        lm = make(srv, cache=cache)
        with pytest.raises(ValidationError):
            lm("p")
        assert lm("p") == ["fine"]
        assert lm("p") == ["fine"]
        assert len(generate_requests(srv)) == 2
        assert lm.history[-1]["cached"] is True
        assert lm("p", cache=False) == ["fine"]
        assert len(generate_requests(srv)) == 3
        # a different parameter is a different request
        lm("p", max_tokens=5)
        assert len(generate_requests(srv)) == 4
    cache.disk.close()  # type: ignore[union-attr]


def test_info_unavailable_validates_static_rules_only() -> None:
    with ScriptedTGI([Reply.generate("x")], info=None) as srv:
        lm = make(srv)
        assert lm("p", n=5, temperature=0.7) == ["x"]  # no max_best_of known
        with pytest.raises(InvalidRequestError):
            lm("p", top_p=0)


def test_secrets_never_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hf_SECRET_TOKEN_123"
    with ScriptedTGI([Reply.error(422, "Input validation error: nope", "validation")]) as srv:
        lm = make(srv, http_request_kwargs={"auth": secret})
        with pytest.raises(ValidationError) as info:
            lm("p")
        assert srv.requests[-1].headers["Authorization"] == f"Bearer {secret}"
        assert secret not in str(info.value) and secret not in repr(info.value)
        assert secret not in repr(lm)
        assert secret not in repr(lm._client._transport)
        assert secret not in json.dumps(lm.history.snapshot(), default=str)


def test_hf_token_only_sent_to_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_envtoken")
    with ScriptedTGI([Reply.generate("x")]) as srv:
        lm = make(srv)
        lm("p")
        assert "Authorization" not in srv.requests[-1].headers


async def test_async_face_runs_concurrently(server: ScriptedTGI) -> None:
    lm = make(server)
    outs = await asyncio.gather(*(lm.acall(f"p{i}") for i in range(20)))
    assert outs == [["Paris"]] * 20
    assert len(lm.history) == 20
    out = await lm.agenerate("q")
    assert out == {"prompt": "q", "choices": [{"text": "Paris"}]}


def test_stream_yields_tokens_then_records_history() -> None:
    events = [
        {
            "index": i + 1,
            "token": {"id": i, "text": t, "logprob": -0.1, "special": False},
            "generated_text": None,
            "details": None,
        }
        for i, t in enumerate(["Pa", "ris"])
    ]
    final = {
        "index": 3,
        "token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": True},
        "generated_text": "Paris",
        "details": {"finish_reason": "eos_token", "generated_tokens": 3, "seed": None},
    }
    with ScriptedTGI([Reply(sse=(*events, final))]) as srv:
        lm = make(srv)
        assert list(lm.stream("q", temperature=0)) == ["Pa", "ris"]
        assert lm.history[-1]["response"]["choices"] == [{"text": "Paris"}]
        assert lm.history[-1]["replica"] == srv.url
        (req,) = [r for r in srv.requests if r.path == "/generate_stream"]
        _assert_valid_generate(req.json)


def test_stream_error_event_raises_typed_error() -> None:
    token = {
        "index": 1,
        "token": {"id": 1, "text": "a", "logprob": -0.1, "special": False},
        "generated_text": None,
        "details": None,
    }
    err = {"error": "Request failed during generation: boom", "error_type": "generation"}
    with ScriptedTGI([Reply(sse=(token, err))]) as srv:
        lm = make(srv)
        with pytest.raises(GenerationError, match="boom"):
            list(lm.stream("q"))


def test_chat_uses_messages_api() -> None:
    body = {
        "object": "chat.completion",
        "id": "",
        "created": 0,
        "model": "test/model",
        "system_fingerprint": "3.3.6-dev0-native",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    with ScriptedTGI([Reply(200, body)]) as srv:
        lm = make(srv)
        out = lm.chat([{"role": "user", "content": "hi"}], max_tokens=10)
        assert out["choices"] == [{"text": "Hello!", "finish_reason": "stop"}]
        assert out["usage"]["total_tokens"] == 7
        (req,) = [r for r in srv.requests if r.path == "/v1/chat/completions"]
        jsonschema.validate(req.json, _schema("ChatRequest"))
        assert req.json["messages"] == [{"role": "user", "content": "hi"}]
        assert req.json["max_tokens"] == 10
        chat_lm = make(srv, mode="chat")
        assert chat_lm("hi") == ["Hello!"]


def test_copy_shares_client_but_not_history(server: ScriptedTGI) -> None:
    lm = make(server)
    lm("p")
    hot = lm.copy(temperature=0.7)
    assert hot.kwargs["temperature"] == 0.7 and lm.kwargs["temperature"] == 0.01
    assert len(hot.history) == 0
    hot("p")
    assert lm.stats()[server.url]["requests"] == 2


def test_chat_stream_yields_deltas_until_done() -> None:
    def chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
        return {
            "object": "chat.completion.chunk",
            "id": "",
            "created": 0,
            "model": "tgi",
            "system_fingerprint": "3.3.6-dev0-native",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": None,
        }

    usage = {
        "object": "chat.completion.chunk",
        "id": "",
        "created": 0,
        "model": "tgi",
        "system_fingerprint": "x",
        "choices": [],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }
    sse = (chunk("Hel"), chunk("lo"), chunk("", "stop"), usage, "[DONE]")
    with ScriptedTGI([Reply(sse=sse)]) as srv:
        lm = make(srv)
        assert list(lm.chat_stream([{"role": "user", "content": "hi"}])) == ["Hel", "lo"]
        entry = lm.history[-1]
        assert entry["response"]["choices"] == [{"text": "Hello", "finish_reason": "stop"}]
        assert entry["usage"]["total_tokens"] == 6
        assert entry["replica"] == srv.url
        (req,) = [r for r in srv.requests if r.path == "/v1/chat/completions"]
        jsonschema.validate(req.json, _schema("ChatRequest"))
        assert req.json["stream"] is True


def test_chat_stream_error_event_is_typed() -> None:
    err = {"error": {"message": "Model is overloaded", "http_status_code": 422}}
    with ScriptedTGI([Reply(sse=(err, "[DONE]"))]) as srv:
        lm = make(srv, retry=RetryPolicy.none())
        with pytest.raises(OverloadedError):
            list(lm.chat_stream([{"role": "user", "content": "hi"}]))


def test_every_kind_of_call_records_one_history_shape() -> None:
    """Completion, chat, stream and chat stream entries share one shape (LM._record)."""
    from tgispy.testing import MockTransport

    def handler(request: Recorded) -> Reply:
        if request.path == "/v1/chat/completions":
            if request.json.get("stream"):
                return Reply.chat_stream(["Par", "is"])
            return Reply.chat("Paris")
        if request.path == "/generate_stream":
            return Reply.stream(["Par", "is"])
        return Reply.generate("Paris")

    lm = HFClientTGI("m", 8080, "http://tgi.test", cache=False, transport=MockTransport(handler))
    messages = [{"role": "user", "content": "Capital of France?"}]
    lm("Capital of France?")
    lm.chat(messages)
    assert "".join(lm.stream("Capital of France?")) == "Paris"
    assert "".join(lm.chat_stream(messages)) == "Paris"
    completion, chat, stream, chat_stream = list(lm.history)[-4:]
    shape = set(completion)
    assert shape >= {"prompt", "response", "kwargs", "usage", "latency", "finish_reasons"}
    assert set(stream) == shape
    assert set(chat) == set(chat_stream) == shape | {"messages"}
    assert chat["prompt"] == chat_stream["prompt"] == "user: Capital of France?"
    assert chat["finish_reasons"] == ["stop"] and chat["messages"] == messages
    assert chat["response"]["choices"][0]["text"] == "Paris"
