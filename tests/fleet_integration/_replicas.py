"""Replicas for the fleet fault tests: in-process ``--backend sim`` servers on 127.0.0.1.

Each replica is the real server app (:func:`tgispy.server.create_app`) over the simulated engine,
listening on a free port of the test's own event loop, with a middleware that counts the requests
it receives per path (so tests can check, server-side, how often the client really sent them).
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tgispy.errors import NoHealthyReplicaError, TGIError
from tgispy.lm._tgi import HFClientTGI
from tgispy.server import ServerConfig, SimConfig, create_app
from tgispy.server._app import FRONT_KEY
from tgispy.server._sim import SimBackend
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout

#: what every healthy replica answers (eight words, so streams have tokens to drop mid-way)
EXPECTED = "Paris is the capital of France and Europe."
MODEL = "tgispy/sim"
#: token latency of a normal replica; requests take ~10 tokens of it
TOKEN_S = 0.002

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Replica:
    """One running in-process sim server."""

    url: str
    app: web.Application
    runner: web.AppRunner
    requests: Counter[str] = field(default_factory=Counter)
    #: every request's path, in arrival order
    log: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def backend(self) -> SimBackend:
        backend = self.app[FRONT_KEY].backend
        assert isinstance(backend, SimBackend)
        return backend

    async def stop(self) -> None:
        await self.runner.cleanup()


def sim(**overrides: Any) -> SimConfig:
    """A sim engine answering :data:`EXPECTED` at :data:`TOKEN_S` per token, plus ``overrides``."""
    settings: dict[str, Any] = {"texts": (EXPECTED,), "token_latency_s": TOKEN_S, "capacity": 64}
    settings.update(overrides)
    return SimConfig(**settings)


async def start_replica(
    config: SimConfig | None = None, *, port: int = 0, **server: Any
) -> Replica:
    """Start the server app over ``config`` on 127.0.0.1 (``port=0``: a free port)."""
    app = create_app(ServerConfig(backend="sim", sim=config or sim(), **server))
    requests: Counter[str] = Counter()
    log: list[str] = []

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        requests[request.path] += 1
        log.append(request.path)
        return await handler(request)

    app.middlewares.append(count)
    # A short shutdown_timeout: a stopped replica must not hold the test up for in-flight work.
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    replica = Replica(f"http://{host}:{bound}", app, runner, requests, log)
    await _wait_ready(replica)
    return replica


async def _wait_ready(replica: Replica) -> None:
    # The engine starts in the background (``/health`` is 503 until then); the sim's is instant.
    for _ in range(500):
        if replica.backend.ready:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"sim replica {replica.url} did not become ready")


def dead_url() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def client(
    replicas: Iterable[Replica | str],
    *,
    retry: RetryPolicy | None = None,
    routing: RoutingPolicy | None = None,
    timeout: Timeout | None = None,
    **kwargs: Any,
) -> HFClientTGI:
    """An uncached ``HFClientTGI`` over ``replicas`` with test-sized timeouts."""
    urls = [r if isinstance(r, str) else r.url for r in replicas]
    return HFClientTGI(
        MODEL,
        None,
        urls,
        {"timeout": timeout or Timeout(connect=2.0, first_byte=10.0, total=20.0)},
        cache=False,
        retry=retry,
        routing=routing,
        **kwargs,
    )


def named_replicas(error: BaseException) -> set[str]:
    """The replicas a tgispy error names: its ``replica``, plus each one in ``errors``."""
    names: set[str] = set()
    if isinstance(error, TGIError) and error.replica:
        names.add(error.replica)
    if isinstance(error, NoHealthyReplicaError):
        names.update(error.errors)
    return names


def check_outcome(outcome: object, urls: Sequence[str]) -> str:
    """Assert that a call was answered with the expected text or failed with a typed error that
    names real replicas; return ``"ok"`` or the error's class name."""
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, TGIError), f"untyped failure: {outcome!r}"
        named = named_replicas(outcome)
        assert named, f"error names no replica: {outcome!r}"
        assert named <= set(urls), f"error names unknown replicas {named - set(urls)}: {outcome}"
        return type(outcome).__name__
    assert outcome == EXPECTED, f"wrong or empty answer: {outcome!r}"
    return "ok"
