"""The engine clients (``FleetLM``: ``OpenAI``, ``HFClientVLLM``, ``OllamaLocal``, ...) on
HFClientTGI's fleet-client builder: credentials, header checks, timeouts and deadlines, the
dialect's health route, and per-call routing keys (``route_key=`` / ``tgispy.tgi.route_key``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import tgispy as dspy
from tgispy.cache import LMCache, MemoryCache
from tgispy.errors import ConfigError, TGIError
from tgispy.lm._fleet import FleetLM
from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi import RetryPolicy, RoutingPolicy, Timeout, route_key

from . import doubles

REPLICAS = ["http://r0.test:8000", "http://r1.test:8000", "http://r2.test:8000"]


def echo(source: Any, body: dict[str, Any]) -> str:
    return "ok"


def posts(transport: MockTransport) -> list[Recorded]:
    return [r for r in transport.requests if r.method == "POST"]


# ---- credentials and headers ---------------------------------------------------------------------
def test_hf_token_is_never_sent_to_an_engine_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_never_for_vllm")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    transport = MockTransport(doubles.vllm(echo))
    vllm = dspy.HFClientVLLM(
        model="m", port=None, url="https://vllm.example", cache=False, transport=transport
    )
    assert vllm("hi") == ["ok"]
    openai = dspy.OpenAI(
        model="m", api_base="https://vllm.example/v1", engine="auto", cache=False,
        transport=transport,
    )  # fmt: skip
    assert openai("hi") == ["ok"]
    assert len(posts(transport)) == 2 and any(r.method == "GET" for r in transport.requests)
    for request in transport.requests:
        assert "authorization" not in {k.lower() for k in request.headers}, request
    # the same environment does reach HuggingFace's TGI over HTTPS (the switch, not the env)
    tgi_transport = MockTransport([Reply.generate("ok")])
    tgi = dspy.HFClientTGI("m", None, "https://tgi.example", cache=False, transport=tgi_transport)
    assert tgi("hi") == ["ok"]
    assert posts(tgi_transport)[0].headers["Authorization"] == "Bearer hf_never_for_vllm"


def test_an_api_key_and_extra_headers_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_never_for_vllm")
    transport = MockTransport(doubles.vllm(echo))
    lm = dspy.OpenAI(
        model="m", api_base="https://vllm.example/v1", api_key="sk-mine", engine="vllm",
        default_headers={"X-Team": "a"}, cache=False, transport=transport,
    )  # fmt: skip
    assert lm("hi") == ["ok"]
    [post] = posts(transport)
    assert post.headers["Authorization"] == "Bearer sk-mine" and post.headers["X-Team"] == "a"


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\0b"])
def test_line_breaks_in_headers_are_config_errors_at_construction(value: str) -> None:
    with pytest.raises(ConfigError, match="CR, LF or NUL") as info:
        dspy.OpenAI(model="m", api_base="http://vllm.test/v1", default_headers={"X-K": value})
    assert value not in str(info.value)  # a header value may be a credential: never echoed
    with pytest.raises(ConfigError, match="CR, LF or NUL"):
        FleetLM("m", urls=["http://vllm.test"], engine="vllm", headers={"X-K": value})


# ---- timeouts and the whole-call deadline --------------------------------------------------------
def slow_posts(req: Recorded) -> Reply:
    if req.method == "GET":
        return Reply(404, b"")
    return Reply(200, {"choices": [{"text": "late", "finish_reason": "stop"}]}, delay=30.0)


def test_a_number_timeout_bounds_each_attempt_and_the_whole_call() -> None:
    transport = MockTransport(slow_posts)
    lm = FleetLM("m", urls=REPLICAS, engine="openai", timeout=0.05, cache=False,
                 transport=transport)  # fmt: skip
    with pytest.raises(TGIError, match=r"timed out|deadline"):
        lm("hi")
    # the first attempt used up the call's 0.05 s: no retry on the other replicas
    assert len(posts(transport)) == 1


def test_the_deadline_counts_from_the_start_of_the_call_discovery_included() -> None:
    vllm = doubles.vllm(echo)

    def slow_discovery(req: Recorded) -> Reply:
        reply = vllm(req)
        return Reply(reply.status, reply.body, delay=0.2) if req.method == "GET" else reply

    transport = MockTransport(slow_discovery)
    lm = FleetLM("m", urls=REPLICAS[:1], engine="vllm", timeout=0.1, cache=False,
                 transport=transport)  # fmt: skip
    with pytest.raises(TGIError, match="deadline"):
        lm("hi")
    assert posts(transport) == []
    assert lm("hi") == ["ok"]  # the limits are known now: the next call has its whole 0.1 s


def test_a_timeout_object_bounds_each_attempt_only() -> None:
    transport = MockTransport(slow_posts)
    lm = FleetLM(
        "m", urls=REPLICAS, engine="openai", timeout=Timeout(connect=0.05, total=0.05),
        retry=RetryPolicy(max_attempts=3), cache=False, transport=transport,
    )  # fmt: skip
    with pytest.raises(TGIError, match="timed out"):
        lm("hi")
    assert len(posts(transport)) == 3


def test_bad_timeouts_are_config_errors() -> None:
    for bad in (0, -1.0, "10", (1, "a")):
        with pytest.raises(ConfigError, match="timeout"):
            FleetLM("m", urls=["http://vllm.test"], engine="vllm", timeout=bad)  # type: ignore[arg-type]


# ---- health probes use the dialect's route -------------------------------------------------------
def probed_paths(engine: str, handler: Any) -> tuple[str, set[str]]:
    """After a first call (detection and discovery done), eject replica 0 with one failed POST
    and call until it takes traffic again: the dialect spoken and the paths of the GETs replica
    0 got meanwhile (its health probes)."""
    posts_to_0: list[str] = []
    armed = [False]

    def handle(req: Recorded) -> Reply:
        if armed[0] and req.method == "POST" and req.replica == REPLICAS[0]:
            posts_to_0.append(req.path)
            if len(posts_to_0) == 1:
                return Reply(503, {"error": "overloaded"})
        reply: Reply = handler(req)
        return reply

    transport = MockTransport(handle, all_routes=True)
    lm = FleetLM(
        "llama3.2" if engine == "ollama" else "m", urls=REPLICAS[:2], engine=engine,
        routing=RoutingPolicy(strategy="round_robin", eject_consecutive_failures=1,
                              eject_base=0.001, panic_threshold=0.0),
        cache=False, transport=transport,
    )  # fmt: skip
    lm("hi")
    before = len(transport.requests)
    armed[0] = True
    for _ in range(50):
        lm("hi")
        if len(posts_to_0) >= 2:  # failed, ejected, probed, back in rotation
            break
    assert len(posts_to_0) >= 2, "replica 0 never came back"
    gets = [r for r in transport.requests[before:] if r.method == "GET"]
    return lm.dialect.name, {r.path for r in gets if r.replica == REPLICAS[0]}


def vllm_with_health(req: Recorded) -> Reply:
    reply: Reply = Reply(200, b"") if req.path == "/health" else doubles.vllm(echo)(req)
    return reply


def test_an_ejected_ollama_replica_is_probed_with_get_root() -> None:
    assert probed_paths("ollama", doubles.ollama(echo)) == ("ollama", {"/"})


def test_an_ejected_vllm_replica_is_probed_with_get_health() -> None:
    assert probed_paths("vllm", vllm_with_health) == ("vllm", {"/health"})


def test_with_engine_auto_the_probe_is_the_route_every_engine_serves() -> None:
    # detection picks vLLM's dialect; the probe stays GET /v1/models, which vLLM serves too
    assert probed_paths("auto", vllm_with_health) == ("vllm", {"/v1/models"})


# ---- per-call routing keys -----------------------------------------------------------------------
def prefix_lm(**kwargs: Any) -> tuple[FleetLM, MockTransport]:
    transport = MockTransport(doubles.vllm(echo))
    lm = dspy.HFClientVLLM(
        model="m", port=None, url=REPLICAS, transport=transport,
        routing=RoutingPolicy(strategy="prefix"), **{"cache": False, **kwargs},
    )  # fmt: skip
    return lm, transport


def test_route_key_pins_a_session_to_one_replica_and_is_never_sent() -> None:
    lm, transport = prefix_lm()
    for turn in range(6):
        assert lm(f"turn {turn} of a chat that shares nothing", route_key="user-42") == ["ok"]
    homes = {r.replica for r in posts(transport)}
    assert len(homes) == 1
    # different keys spread over the replicas (24 keys on 3 replicas all landing on one: ~1e-11)
    transport.requests.clear()
    for user in range(24):
        lm("same prompt for everyone", route_key=f"user-{user}", cache=False)
    spread = Counter(r.replica for r in posts(transport))
    assert len(spread) >= 2, spread
    assert all("route_key" not in r.json for r in posts(transport))
    with pytest.raises(ConfigError, match="route_key must be a string"):
        lm("x", route_key=42)


def test_the_route_key_context_pins_calls_chat_and_streams() -> None:
    lm, transport = prefix_lm(model_type="chat")
    with route_key("user-7"):
        for turn in range(4):
            lm(f"another turn {turn}")
            lm.chat([{"role": "user", "content": f"chat turn {turn}"}])
        assert "".join(lm.stream("a streamed turn")) == "ok"
        assert "".join(lm.chat_stream([{"role": "user", "content": "s"}])) == "ok"
    assert len(posts(transport)) == 10
    assert len({r.replica for r in posts(transport)}) == 1
    assert all("route_key" not in r.json for r in posts(transport))
    # a per-call key wins over the block's, on streams too
    with route_key("user-7"):
        home = posts(transport)[0].replica
        others = [f"k{i}" for i in range(24)]
        for key in others:
            assert "".join(lm.stream("x", route_key=key)) == "ok"
    assert {r.replica for r in posts(transport)[10:]} - {home}


def test_route_key_is_not_part_of_the_cache_key() -> None:
    cache = LMCache(memory=MemoryCache(maxsize=100))
    lm, transport = prefix_lm(cache=cache)
    assert lm("cached prompt", route_key="user-1") == ["ok"]
    assert lm("cached prompt", route_key="user-2") == ["ok"]
    assert lm("cached prompt") == ["ok"]
    assert len(posts(transport)) == 1
    assert lm("another prompt", route_key="user-1") == ["ok"]
    assert len(posts(transport)) == 2
