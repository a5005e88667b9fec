"""engine="auto": which engine serves a replica, from safe GETs; mixed fleets; mismatches."""

from __future__ import annotations

import json
from typing import Any

import pytest

import tgispy as dspy
from tgispy.engines._detect import PROBES, classify
from tgispy.errors import ConfigError
from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi import RetryPolicy, RoutingPolicy

from . import doubles
from .conftest import LlamaServer


def models(owner: str, model: str = "m", created: int = 1) -> bytes:
    card = {"id": model, "object": "model", "created": created, "owned_by": owner}
    return json.dumps({"object": "list", "data": [card]}).encode()


@pytest.mark.parametrize(
    ("path", "status", "headers", "body", "engine"),
    [
        ("/v1/models", 200, {}, models("vllm"), "vllm"),
        ("/v1/models", 200, {}, models("sglang"), "sglang"),
        ("/v1/models", 200, {}, models("llamacpp"), "llamacpp"),
        ("/v1/models", 200, {}, models("m", "m", created=0), "tgi"),
        ("/v1/models", 200, {}, models("library"), None),  # Ollama's /v1: not conclusive
        ("/v1/models", 200, {}, b'{"object":"list","data":null}', None),
        ("/v1/models", 401, {"Server": "llama.cpp"}, b"", "llamacpp"),
        ("/v1/models", 401, {}, b'{"error":"Unauthorized"}', None),
        ("/api/version", 200, {}, b'{"version":"0.32.15"}', "ollama"),
        ("/version", 200, {}, b'{"version":"0.33.0"}', "vllm"),
        ("/props", 200, {}, b'{"build_info":"b1-abc","total_slots":4}', "llamacpp"),
        ("/info", 200, {}, b'{"router":"text-generation-router","version":"3.3.7"}', "tgi"),
        ("/info", 200, {}, b"<html>", None),
    ],
)
def test_classify(
    path: str, status: int, headers: dict[str, str], body: bytes, engine: Any
) -> None:
    assert classify(path, status, headers, body) == engine


def test_health_is_never_probed() -> None:
    assert "/health" not in PROBES  # SGLang's /health runs a generation


@pytest.mark.parametrize(
    ("double", "engine"),
    [
        (doubles.vllm(lambda s, b: " 4"), "vllm"),
        (doubles.sglang(lambda s, b: " 4"), "sglang"),
        (doubles.ollama(lambda s, b: " 4", models=("m",)), "ollama"),
    ],
)
def test_auto_detects_the_engine_once(double: Any, engine: str) -> None:
    transport = MockTransport(double)
    lm = dspy.OpenAI(model="m", api_base="http://x.test:8000/v1", cache=False, transport=transport)
    assert lm("Q:") == [" 4"]
    assert lm("Q:") == [" 4"]
    assert lm.dialect.name == engine
    probes = [r.path for r in transport.requests if r.method == "GET" and r.path in PROBES]
    assert len(probes) == len(set(probes))  # each probe at most once


def test_a_mixed_fleet_is_refused_before_any_generation() -> None:
    vllm, sglang = doubles.vllm(lambda s, b: "x"), doubles.sglang(lambda s, b: "x")

    def handler(req: Recorded) -> Reply:
        return (vllm if req.replica.startswith("http://a.test") else sglang)(req)

    transport = MockTransport(handler)
    lm = dspy.OpenAI(
        model="m", api_base=["http://a.test/v1", "http://b.test/v1"], cache=False,
        transport=transport,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"different engines .*a.test: vllm.*b.test: sglang"):
        lm("Q:")
    assert not [r for r in transport.requests if r.method == "POST"]


def test_a_declared_engine_the_server_contradicts_fails_before_generating() -> None:
    transport = MockTransport(doubles.sglang(lambda s, b: "x"))
    lm = dspy.HFClientVLLM(model="m", port=8000, cache=False, transport=transport)
    with pytest.raises(ConfigError, match=r"engine='vllm'.*owned_by 'sglang'"):
        lm("Q:")
    assert not [r for r in transport.requests if r.method == "POST"]


def test_auto_detects_the_real_llamacpp_server(llama_server: LlamaServer) -> None:
    lm = dspy.OpenAI(model="smollm2", api_base=llama_server.url + "/v1", cache=False, max_tokens=2)
    assert lm("Hello")
    assert lm.dialect.name == "llamacpp"


def test_auto_probes_again_when_no_replica_answered() -> None:
    up = False
    vllm = doubles.vllm(lambda s, b: " 4")

    def handler(req: Recorded) -> Reply:
        return vllm(req) if up else Reply.refuse_connection()

    transport = MockTransport(handler, all_routes=True)
    never_eject = RoutingPolicy(eject_consecutive_failures=None, eject_failure_rate=None)
    lm = dspy.OpenAI(
        model="m", api_base="http://x.test/v1", cache=False, transport=transport,
        routing=never_eject, retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip
    with pytest.raises(dspy.TGIError):
        lm("Q:")
    up = True
    assert lm("Q:") == [" 4"]
    assert lm.dialect.name == "vllm"  # not stuck on the generic dialect guessed while down
