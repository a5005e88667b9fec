"""The DSPy 3.4 engines over scripted TGI replicas: calls, routing, retries, streams."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from ._gate import import_dspy

dspy = import_dspy()

from dspy.lm15 import Config, Message, Request  # noqa: E402
from dspy.utils.exceptions import (  # noqa: E402
    LMInvalidRequestError,
    LMRateLimitError,
    LMServerError,
    LMUnsupportedFeatureError,
)

from tgispy.errors import ConfigError  # noqa: E402
from tgispy.integrations.dspy import (  # noqa: E402
    AsyncTGIEngine,
    RetryPolicy,
    RoutingPolicy,
    TGIEngine,
    tgi_lm,
)
from tgispy.testing import Reply, ScriptedTGI  # noqa: E402

from ._scripted import USAGE, Oracle, chat, chat_adapter_text, chat_sse  # noqa: E402
from .conftest import posts  # noqa: E402

pytestmark = pytest.mark.usefixtures("dspy_memory_cache")

Start = Callable[..., ScriptedTGI]
QA = Oracle({"Capital of France?": "Paris", "Capital of Italy?": "Rome"})


def unavailable() -> Reply:
    # Retry-After: 0 keeps DSPy's own retry sleep (normally 1 s, 2 s, ...) out of the test's time
    return Reply.error(503, "Model is loading", "unavailable", **{"Retry-After": "0"})


def request(text: str = "Capital of France?", **config: Any) -> Any:
    return Request(model="tgi/smol", messages=(Message.user(text),), config=Config(**config))


# ---- the engines themselves --------------------------------------------------------------------


def test_the_sync_engine_answers_a_canonical_request(scripted: Start) -> None:
    server = scripted([chat("Paris")])
    engine = TGIEngine(server.url)
    response = engine.complete(request(max_tokens=8))
    assert response.text == "Paris"
    assert response.usage.total_tokens == USAGE["total_tokens"]
    assert response.provider_data["tgi"]["replica"] == server.url
    (sent,) = posts(server)
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {
        "model": "tgi",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "max_tokens": 8,
        "temperature": 0.0,
    }


async def test_the_async_engine_answers_on_the_running_loop(scripted: Start) -> None:
    server = scripted([chat("Rome")])
    engine = AsyncTGIEngine(server.url)
    response = await engine.complete(request("Capital of Italy?"))
    assert (response.text, response.finish_reason) == ("Rome", "stop")
    assert engine.stats()[server.url]["requests"] == 1


async def test_the_generate_endpoint_uses_usage_headers_and_the_served_model(
    scripted: Start,
) -> None:
    server = scripted([Reply.generate(" Paris", generated_tokens=2, prompt_tokens=9, details=True)])
    engine = AsyncTGIEngine(server.url, endpoint="generate", parameters={"repetition_penalty": 1.2})
    response = await engine.complete(request(max_tokens=4))
    assert response.text == " Paris"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (9, 2)
    assert response.model == "scripted/model"  # the model id the server's /info reports
    (sent,) = posts(server)
    assert sent.path == "/generate"
    assert sent.json["inputs"] == "Capital of France?\n\nBEGIN RESPONSE:"
    assert sent.json["parameters"]["repetition_penalty"] == 1.2
    assert sent.json["parameters"]["details"] is True


def test_bad_engine_configuration_fails_at_construction(scripted: Start) -> None:
    url = "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match="endpoint must be"):
        AsyncTGIEngine(url, endpoint="completions")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\['best_of'\] are not TGI generate parameters"):
        AsyncTGIEngine(url, endpoint="generate", parameters={"best_of": 2})
    with pytest.raises(ConfigError, match="prompt_format renders /generate prompts"):
        AsyncTGIEngine(url, prompt_format=lambda r: "x")
    with pytest.raises(ConfigError, match="bad engine parameters: top_p"):
        AsyncTGIEngine(url, parameters={"top_p": 1.5, "temperature": 0.5})
    with pytest.raises(ConfigError, match="http"):
        TGIEngine("localhost:8080")


def test_auth_reaches_the_server_and_never_the_saved_state(scripted: Start) -> None:
    server = scripted([chat("Paris")])
    lm = tgi_lm("tgi/smol", server.url, auth="hf_secret_token", cache=False)
    assert lm("Capital of France?") == ["Paris"]
    (sent,) = posts(server)
    assert sent.headers["Authorization"] == "Bearer hf_secret_token"
    assert "hf_secret_token" not in json.dumps(lm.dump_state())


def test_an_lm_with_the_engines_saves_and_loads(scripted: Start) -> None:
    server = scripted([chat("Paris")])
    lm = tgi_lm(
        "tgi/smol",
        server.url,
        retry=RetryPolicy(max_attempts=2),
        routing=RoutingPolicy(strategy="round_robin"),
        cache=False,
    )
    state = json.loads(json.dumps(lm.dump_state()))
    loaded = dspy.BaseLM.load_state(state, allow_custom_lm_class=True)
    assert isinstance(loaded.engine, TGIEngine)
    assert loaded.engine.aio.client.retry.max_attempts == 2
    assert loaded.engine.aio.client.routing.strategy == "round_robin"
    assert loaded("Capital of France?") == ["Paris"]
    with pytest.raises(ValueError, match="allow_unsafe_lm_state"):
        dspy.BaseLM.load_state(state)


def test_a_program_saved_with_its_lm_names_the_public_engine_module(
    scripted: Start, tmp_path: Any
) -> None:
    server = scripted(QA)
    program = dspy.Predict("question -> answer")
    program.lm = tgi_lm("tgi/smol", server.url, cache=False)
    program.save(str(tmp_path / "program.json"))
    saved = json.loads((tmp_path / "program.json").read_text())["lm"]
    assert saved["engine"]["class"] == "tgispy.integrations.dspy:TGIEngine"
    assert saved["async_engine"]["class"] == "tgispy.integrations.dspy:AsyncTGIEngine"
    loaded = dspy.Predict("question -> answer")
    loaded.load(str(tmp_path / "program.json"), allow_unsafe_lm_state=True)
    assert loaded(question="Capital of France?").answer == "Paris"


# ---- dspy.LM over the engines --------------------------------------------------------------------


def test_tgi_lm_is_a_dspy_lm_with_dspys_retries_off(scripted: Start) -> None:
    server = scripted([chat("Paris")])
    lm = tgi_lm("tgi/smol", server.url, cache=False, max_tokens=32)
    assert isinstance(lm, dspy.LM)
    assert lm.num_retries == 0
    assert lm.supports_response_schema
    assert "response_format" in lm.supported_params
    assert lm("Capital of France?") == ["Paris"]
    assert lm.history[-1]["usage"]["total_tokens"] == USAGE["total_tokens"]
    assert posts(server)[0].json["max_tokens"] == 32


def test_requests_are_routed_across_replicas(scripted: Start) -> None:
    a, b = scripted([chat("Paris")]), scripted([chat("Paris")])
    lm = tgi_lm("tgi/smol", [a.url, b.url], routing=RoutingPolicy(strategy="round_robin"))
    for i in range(6):
        assert lm(f"Q{i}") == ["Paris"]  # distinct prompts: no DSPy cache hits
    assert (len(posts(a)), len(posts(b))) == (3, 3)
    assert lm.engine.stats()[a.url]["requests"] == 3


def test_tgispy_fails_over_to_another_replica_inside_one_dspy_attempt(scripted: Start) -> None:
    a, b = scripted([unavailable()]), scripted([chat("Paris")])
    lm = tgi_lm("tgi/smol", [a.url, b.url], routing=RoutingPolicy(strategy="round_robin"))
    assert lm("Q1") == ["Paris"]
    assert lm("Q2") == ["Paris"]
    # round robin starts at a: each call fails there once and is retried on b
    assert (len(posts(a)), len(posts(b))) == (2, 2)


@pytest.mark.parametrize(
    ("num_retries", "max_attempts", "http_attempts"),
    [
        (0, 3, 3),  # tgi_lm's default: tgispy retries, DSPy does not
        (2, 1, 3),  # DSPy retries, tgispy makes one attempt (RetryPolicy.none())
        (1, 2, 4),  # both: the attempts multiply, (num_retries + 1) * max_attempts
    ],
)
def test_dspy_and_tgispy_retries_compose_as_documented(
    scripted: Start, num_retries: int, max_attempts: int, http_attempts: int
) -> None:
    a, b = scripted([unavailable()]), scripted([unavailable()])
    lm = tgi_lm(
        "tgi/smol",
        [a.url, b.url],
        num_retries=num_retries,
        retry=RetryPolicy(max_attempts=max_attempts, backoff_initial=0.0, backoff_max=0.0),
        cache=False,
    )
    with pytest.raises(LMServerError) as raised:
        lm("Capital of France?")
    assert len(posts(a)) + len(posts(b)) == http_attempts
    assert raised.value.provider == "tgi"
    assert raised.value.status == 503


def test_a_validation_error_is_never_retried(scripted: Start) -> None:
    server = scripted(
        [Reply.error(422, "Input validation error: `top_p` must be > 0.0", "validation")]
    )
    lm = tgi_lm("tgi/smol", server.url, num_retries=2, cache=False)
    with pytest.raises(LMInvalidRequestError, match="top_p"):
        lm("Capital of France?")
    assert len(posts(server)) == 1


def test_overload_carries_retry_after_to_dspy(scripted: Start) -> None:
    server = scripted(
        [Reply.error(429, "Model is overloaded", "overloaded", **{"Retry-After": "0"})]
    )
    lm = tgi_lm("tgi/smol", server.url, retry=RetryPolicy.none(), cache=False)
    with pytest.raises(LMRateLimitError) as raised:
        lm("Capital of France?")
    assert raised.value.retry_after == 0.0
    assert len(posts(server)) == 1


def test_what_tgi_cannot_take_fails_before_any_request(scripted: Start) -> None:
    server = scripted([chat("Paris")])
    lm = tgi_lm("tgi/smol", server.url, cache=False)
    with pytest.raises(LMUnsupportedFeatureError, match="top_k"):
        lm("Capital of France?", top_k=5)
    assert posts(server) == []


def test_dspy_fans_out_n_as_separate_requests(scripted: Start) -> None:
    server = scripted([chat("Paris"), chat("Paris!"), chat("Paris.")])
    lm = tgi_lm("tgi/smol", server.url, cache=False)
    assert lm("Capital of France?", n=3, temperature=0.7) == ["Paris", "Paris!", "Paris."]
    sent = posts(server)
    assert len(sent) == 3
    assert all("n" not in r.json and "best_of" not in r.json for r in sent)
    assert all(r.json["temperature"] == 0.7 for r in sent)


def test_lm_copies_share_the_fleet_and_rollout_ids_stay_in_dspy(scripted: Start) -> None:
    server = scripted([chat("Paris")])
    lm = tgi_lm("tgi/smol", server.url)
    rollout = lm.copy(rollout_id=1, temperature=1.0)  # what optimizers do to bypass the cache
    assert rollout.engine is lm.engine
    assert lm("Capital of France?") == rollout("Capital of France?") == ["Paris"]
    first, second = (r.json for r in posts(server))  # two requests: the rollout missed the cache
    assert (first["temperature"], second["temperature"]) == (0.0, 1.0)
    assert "rollout_id" not in second
    assert lm.engine.stats()[server.url]["requests"] == 2


def test_dspy_owns_the_cache_and_the_engine_never_caches(scripted: Start) -> None:
    server = scripted([chat("Paris")])
    cached = tgi_lm("tgi/smol", server.url)
    assert cached("Capital of France?") == cached("Capital of France?") == ["Paris"]
    assert len(posts(server)) == 1
    uncached = tgi_lm("tgi/smol", server.url, cache=False)
    assert uncached("Capital of France?") == uncached("Capital of France?") == ["Paris"]
    assert len(posts(server)) == 3


def test_errors_are_never_cached(scripted: Start) -> None:
    server = scripted([unavailable(), chat("Paris")])
    lm = tgi_lm("tgi/smol", server.url, retry=RetryPolicy.none())
    with pytest.raises(LMServerError):
        lm("Capital of France?")
    assert lm("Capital of France?") == ["Paris"]
    assert len(posts(server)) == 2


def test_token_usage_reaches_dspys_usage_tracker(scripted: Start) -> None:
    server = scripted(QA)
    lm = tgi_lm("tgi/smol", server.url, cache=False)
    with dspy.context(lm=lm, track_usage=True):
        prediction = dspy.Predict("question -> answer")(question="Capital of France?")
    assert prediction.answer == "Paris"
    usage = prediction.get_lm_usage()["tgi/smol"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (11, 7)


# ---- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("async_program", [True, False], ids=["async-engine", "sync-engine"])
async def test_dspy_streams_a_field_through_the_engines(
    scripted: Start, async_program: bool
) -> None:
    text = chat_adapter_text({"answer": "Paris is the capital."})
    server = scripted([chat_sse([text[:20], text[20:30], text[30:]])])
    lm = tgi_lm("tgi/smol", server.url, cache=False)
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    # an async program streams through the async engine on this loop; a sync one runs in a
    # worker thread (dspy.asyncify) and streams through the sync engine
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
    assert final is not None and final.answer == "Paris is the capital."
    assert "".join(chunks).strip() == "Paris is the capital."
    (sent,) = posts(server)
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}


def test_the_sync_engine_streams_lm15_events(scripted: Start) -> None:
    server = scripted([chat_sse(["Pa", "ris"], finish_reason="length")])
    events = list(TGIEngine(server.url).stream(request()))
    assert [e.type for e in events] == ["start", "delta", "delta", "end"]
    assert events[-1].finish_reason == "length"
    assert events[-1].usage.total_tokens == USAGE["total_tokens"]


async def test_the_generate_endpoint_streams_and_stops_early_cleanly(scripted: Start) -> None:
    token = {"id": 1, "text": " Paris", "logprob": -0.1, "special": False}
    final = {
        "token": {"id": 2, "text": "!", "logprob": -0.2, "special": False},
        "generated_text": " Paris!",
        "details": {"finish_reason": "length", "generated_tokens": 2, "seed": None},
    }
    events = ({"token": token, "generated_text": None, "details": None}, final)
    server = scripted([Reply(200, sse=events)])
    engine = AsyncTGIEngine(server.url, endpoint="generate")
    seen = [e async for e in engine.stream(request())]
    assert [e.type for e in seen] == ["start", "delta", "delta", "end"]
    assert "".join(e.delta.text for e in seen if e.type == "delta") == " Paris!"
    assert posts(server)[0].path == "/generate_stream"
    async with contextlib.aclosing(engine.stream(request())) as stream:
        async for event in stream:
            assert event.type == "start"
            break  # DSPy closes a stream it stops reading; the HTTP stream goes with it
    assert len(posts(server)) == 2


async def test_a_mid_stream_error_is_raised_as_an_lm15_error(scripted: Start) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "Pa"}, "finish_reason": None}]}
    error = {"error": "Request failed during generation: CUDA OOM", "error_type": "generation"}
    server = scripted([Reply(200, sse=(chunk, error))])
    engine = AsyncTGIEngine(server.url)
    seen = []
    with pytest.raises(dspy.lm15.ServerError, match="CUDA OOM"):
        async for event in engine.stream(request()):
            seen.append(event.type)
    assert seen == ["start", "delta"]
    assert len(posts(server)) == 1  # output was already sent: never replayed
