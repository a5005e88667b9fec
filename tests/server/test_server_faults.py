"""The sim backend's fault injection, as a client sees it over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tgispy.errors import ConfigError
from tgispy.server import SimConfig

Client = TestClient[Any, Any]
GEN = {"inputs": "x", "parameters": {"max_new_tokens": 4}}


async def test_error_status_on_json_routes(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(error_rates={503: 1.0}))
    resp = await client.post("/generate", json=GEN)
    assert resp.status == 503
    assert (await resp.json())["error_type"] == "unavailable"
    client = await sim_client_factory(SimConfig(error_rates={429: 1.0}))
    resp = await client.post("/generate", json=GEN)
    assert resp.status == 429
    assert await resp.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    resp = await client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
    )
    assert resp.status == 429


async def test_tgi_statuses_arrive_as_stream_events_others_as_http(
    sim_client_factory: Any, sse: Callable[[str], list[Any]]
) -> None:
    client: Client = await sim_client_factory(SimConfig(error_rates={424: 1.0}))
    resp = await client.post("/generate_stream", json=GEN)
    assert resp.status == 200
    assert sse(await resp.text()) == [
        {"error": "Request failed during generation: simulated fault", "error_type": "generation"}
    ]
    resp = await client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    events = sse(await resp.text())
    assert events[0]["error"]["http_status_code"] == 422
    assert events[-1] == "[DONE]"
    client = await sim_client_factory(SimConfig(error_rates={502: 1.0}))
    resp = await client.post("/generate_stream", json=GEN)
    assert resp.status == 502


async def test_malformed_bodies(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(malformed_rate=1.0))
    resp = await client.post("/generate", json=GEN)
    assert resp.status == 200
    with pytest.raises(ValueError):
        json.loads(await resp.text())
    resp = await client.post("/generate_stream", json=GEN)
    text = await resp.text()
    assert text.startswith("data: ")
    with pytest.raises(ValueError):
        json.loads(text[len("data: ") :])


async def test_truncated_bodies(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(truncated_rate=1.0))
    resp = await client.post("/generate", json=GEN)
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    resp = await client.post("/generate_stream", json=GEN)
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_dropped_connections(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(drop_rate=1.0))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.post("/generate", json=GEN)
    resp = await client.post(
        "/generate_stream", json={"inputs": "x", "parameters": {"max_new_tokens": 4}}
    )
    received: list[bytes] = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async for line in resp.content:
            if line.startswith(b"data: "):
                received.append(line)
    # some tokens came through, never the final event
    assert len(received) == 1
    assert json.loads(received[0][6:])["generated_text"] is None


async def test_hang_then_answer(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(hang_rate=1.0, hang_s=0.05))
    resp = await client.post("/generate", json=GEN)
    assert resp.status == 200
    hung: Client = await sim_client_factory(SimConfig(hang_rate=1.0, hang_s=60))
    with pytest.raises(asyncio.TimeoutError):
        await hung.post("/generate", json=GEN, timeout=aiohttp.ClientTimeout(total=0.2))


async def _statuses(client: Client, n: int) -> list[int]:
    out = []
    for _ in range(n):
        resp = await client.post("/generate", json=GEN)
        await resp.read()
        out.append(resp.status)
    return out


async def test_faults_are_deterministic_given_the_seed(sim_client_factory: Any) -> None:
    rates = {429: 0.3, 503: 0.3}
    a = await _statuses(await sim_client_factory(SimConfig(error_rates=rates, seed=7)), 30)
    b = await _statuses(await sim_client_factory(SimConfig(error_rates=rates, seed=7)), 30)
    c = await _statuses(await sim_client_factory(SimConfig(error_rates=rates, seed=8)), 30)
    assert a == b
    assert a != c
    assert {200, 429, 503} == set(a)


def test_sim_config_checks_rates() -> None:
    with pytest.raises(ConfigError, match="add up to"):
        SimConfig(error_rates={429: 0.6}, drop_rate=0.6)
    with pytest.raises(ConfigError, match="400-599"):
        SimConfig(error_rates={200: 0.1})
    with pytest.raises(ConfigError, match="probability"):
        SimConfig(hang_rate=2.0)
    with pytest.raises(ConfigError, match="capacity"):
        SimConfig(capacity=0)
