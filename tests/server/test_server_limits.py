"""Resource limits of the server's front: connections (cap, timeouts) and /tokenize."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import resource
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tgispy.server import ServerConfig, SimConfig, create_app, start_server
from tgispy.server._app import FRONT_KEY, GUARD_KEY
from tgispy.server._guard import (
    REFUSAL,
    AcceptErrorLog,
    ConnectionGuard,
    GuardedSite,
    default_max_connections,
)

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


# --- connections: cap, header and body timeouts, accept errors (item 7 of issue 13) ------------

HALF_OPEN = b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n"


@contextlib.asynccontextmanager
async def guarded_server(
    sim: SimConfig | None = None, **config: Any
) -> AsyncIterator[tuple[str, ConnectionGuard]]:
    """The app behind a :class:`GuardedSite` on 127.0.0.1, as ``tgispy serve`` runs it."""
    cfg = ServerConfig(backend="sim", sim=sim or SimConfig(texts=("ok",)), **config)
    app = create_app(cfg)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, app[GUARD_KEY])
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", app[GUARD_KEY]
    finally:
        await runner.cleanup()


async def _half_open(url: str, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    host, port = url.removeprefix("http://").split(":")
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(HALF_OPEN)
        conns.append((reader, writer))
    await asyncio.gather(*(w.drain() for _, w in conns))
    return conns


async def _fresh(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> int:
    async with session.request(method, url, timeout=aiohttp.ClientTimeout(total=5), **kw) as r:
        await r.read()
        return r.status


async def test_half_open_requests_cannot_starve_health_and_generate() -> None:
    async with guarded_server(max_connections=20, header_timeout_s=0.5) as (url, guard):
        conns = await _half_open(url, 200)
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection per request
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(3):
                assert await _fresh(session, "GET", url + "/health") == 200
                body = {"inputs": "x", "parameters": {"max_new_tokens": 2}}
                assert await _fresh(session, "POST", url + "/generate", json=body) == 200
        assert guard.open <= 20
        assert guard.evicted >= 180  # newcomers took the places of the half-open ones
        # every half-open connection is closed: evicted, or after the header timeout
        for reader, writer in conns:
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        assert guard.open == 0
        assert guard.timed_out >= 1


async def test_when_every_connection_is_busy_a_newcomer_gets_a_short_503() -> None:
    slow = SimConfig(texts=("one two three four five",), token_latency_s=1.0)
    async with guarded_server(slow, max_connections=2) as (url, guard):
        host, port = url.removeprefix("http://").split(":")
        async with aiohttp.ClientSession() as session:
            busy = []
            for _ in range(2):
                # a slow stream keeps its connection busy
                resp = await session.post(
                    url + "/generate_stream",
                    json={"inputs": "x", "parameters": {"max_new_tokens": 5}},
                )
                busy.append(resp)
            assert guard.open == 2
            reader, writer = await asyncio.open_connection(host, int(port))
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            for resp in busy:
                resp.close()
        assert answer == REFUSAL
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert guard.refused == 1


async def test_a_body_that_trickles_is_cut_off_with_408() -> None:
    async with guarded_server(body_timeout_s=0.3) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"inputs":'
        )
        answer = await asyncio.wait_for(reader.read(), 10)  # read() ends: the server closed
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"Failed to buffer the request body: not received within 0.3 seconds")


class _FakeLoop:
    def __init__(self) -> None:
        self.default: list[dict[str, Any]] = []

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.default.append(context)


def test_accept_errors_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    handler = AcceptErrorLog(interval_s=10.0, clock=lambda: now[0])
    loop = _FakeLoop()
    emfile = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(24, "Too many open files"),
    }
    with caplog.at_level(logging.ERROR, logger="tgispy.server._guard"):
        for _ in range(5_000):  # a flood: asyncio reports every failed accept()
            handler(loop, emfile)  # type: ignore[arg-type]
            now[0] += 0.001
        now[0] += 10.0
        handler(loop, emfile)  # type: ignore[arg-type]
    assert len(caplog.records) == 2
    assert "Too many open files" in caplog.records[0].getMessage()
    assert "(4999 more since the last report)" in caplog.records[1].getMessage()
    # anything else goes to asyncio's own handler
    handler(loop, {"message": "something else"})  # type: ignore[arg-type]
    assert loop.default == [{"message": "something else"}]


def test_the_default_cap_leaves_descriptors_for_the_server() -> None:
    assert default_max_connections(1024) == 896
    assert default_max_connections(100) == 68
    assert default_max_connections(10) == 16
    assert default_max_connections(10**9) == 57_344


def test_flooding_a_server_out_of_descriptors_keeps_its_log_small(tmp_path: Any) -> None:
    """With 64 descriptors and a cap above them, accept() fails with EMFILE: once per second
    for as long as it lasts, asyncio wrote a traceback (108 MB in 40 s at 1,100 connections)."""
    args = ["--backend", "sim", "--max-connections", "1000", "--header-timeout", "1"]
    with start_server(args, timeout=60) as server:
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (64, 64))
        socks = []
        for _ in range(150):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", server.port))
            socks.append(sock)
        time.sleep(0.3)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(HALF_OPEN)
        time.sleep(3.0)
        log = server.stderr_tail()
        for sock in socks:
            sock.close()
        # header timeouts free the descriptors: the server answers again
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(server.url + "/health", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    reports = log.count("cannot accept connections")
    assert 1 <= reports <= 2, log
    assert "Traceback" not in log
