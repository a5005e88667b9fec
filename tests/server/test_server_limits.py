"""Resource limits of the server's front: /tokenize off the loop with a cap and bounded slots."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from aiohttp.test_utils import TestClient

from tgispy.server import SimConfig
from tgispy.server._app import FRONT_KEY

Client = TestClient[Any, Any]
TOO_LARGE = "Failed to buffer the request body: length limit exceeded"


async def test_tokenize_has_its_own_size_cap(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(texts=("ok",)), tokenize_limit=1_000)
    body = {"inputs": "word " * 400, "parameters": {"max_new_tokens": 1}}
    resp = await client.post("/tokenize", json=body)
    assert resp.status == 413
    assert await resp.text() == TOO_LARGE
    # a chunked body (no Content-Length) is cut off at the cap as well
    raw = json.dumps(body).encode()

    async def chunks() -> Any:
        for i in range(0, len(raw), 100):
            yield raw[i : i + 100]

    resp = await client.post(
        "/tokenize", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    # the other routes keep the payload limit
    resp = await client.post("/generate", json=body)
    assert resp.status == 200
    small = await client.post("/tokenize", json={"inputs": "word " * 10})
    assert small.status == 200
    assert len(await small.json()) == 11  # the trailing space is a token of its own


async def test_tokenize_waits_for_a_slot_then_refuses_past_the_queue(
    sim_client_factory: Any,
) -> None:
    client: Client = await sim_client_factory(
        SimConfig(), tokenize_workers=1, max_concurrent_requests=1
    )
    front = client.app[FRONT_KEY]
    async with front.tokenize_slot():  # the only worker is busy
        waiting = asyncio.create_task(client.post("/tokenize", json={"inputs": "a b"}))
        for _ in range(200):
            if front.tokenize_waiting == 1:
                break
            await asyncio.sleep(0.005)
        assert front.tokenize_waiting == 1
        assert not waiting.done()
        # one request already waits (max_concurrent_requests=1): the next one is refused
        resp = await client.post("/tokenize", json={"inputs": "c"})
        assert resp.status == 429
        assert await resp.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    resp = await waiting
    assert resp.status == 200
    assert [t["text"] for t in await resp.json()] == ["a", " b"]
    assert front.tokenize_waiting == 0


async def test_health_answers_while_a_megabyte_tokenize_runs(sim_client: Client) -> None:
    """A 0.9 MB /tokenize held the event loop for its whole run (/health waited 1.7 s)."""
    body = json.dumps({"inputs": "é " * 300_000}, ensure_ascii=False).encode()
    big = asyncio.create_task(
        sim_client.post(
            "/tokenize", data=io.BytesIO(body), headers={"Content-Type": "application/json"}
        )
    )
    answered_meanwhile = 0
    while not big.done():
        resp = await sim_client.get("/health")
        assert resp.status == 200
        if not big.done():
            answered_meanwhile += 1
        await asyncio.sleep(0.005)
    resp = await big
    assert resp.status == 200
    tokens = await resp.json()
    assert len(tokens) == 300_001
    # the loop stayed free: /health was answered many times while the tokenization ran
    assert answered_meanwhile >= 10, answered_meanwhile
