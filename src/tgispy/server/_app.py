"""The HTTP front: TGI's routes over any :class:`~tgispy.server._types.Backend`, on aiohttp.web.

:func:`create_app` wires the pieces: the shared state (:class:`~tgispy.server._front.Front`),
the middlewares (connection guard, problem → response, metrics, readiness), the five
generation routes, each one :mod:`~tgispy.server._pipeline` run with its API's codec
(:mod:`~tgispy.server._codecs`) and, for a sim with fault rates, its faults
(:mod:`~tgispy.server._faults`), and the small routes below.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from tgispy.server import _middlewares as middlewares
from tgispy.server import _pipeline as pipeline
from tgispy.server import _protocol as proto
from tgispy.server._codecs import (
    Parser,
    parse_chat_route,
    parse_compat_route,
    parse_completions_route,
    parse_generate_route,
    parse_stream_route,
)
from tgispy.server._config import ServerConfig
from tgispy.server._faults import FaultPlan, with_faults
from tgispy.server._front import OFF_LOOP_BYTES, Front
from tgispy.server._guard import ConnectionGuard, default_max_connections
from tgispy.server._types import Backend
from tgispy.server._validation import decode_body, parse_generate
from tgispy.tgi._protocol import ENDPOINTS

__all__ = ["FRONT_KEY", "GUARD_KEY", "create_app", "make_backend"]

_JSON: Final = "application/json"
_UNHEALTHY: Final = b'{"error":"unhealthy","error_type":"healthcheck"}'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FRONT_KEY: Final = web.AppKey("tgispy_front", Front)
#: the app's connection guard (it acts on connections accepted by a :class:`GuardedSite`)
GUARD_KEY: Final = web.AppKey("tgispy_guard", ConnectionGuard)


def make_backend(config: ServerConfig) -> Backend:
    """The backend ``config`` asks for (the llama one imports xllamacpp only when started).

    Raises:
        ImportError: the default model package is missing (the message names the install).
    """
    if config.backend == "sim":
        from tgispy.server._sim import SimBackend

        return SimBackend(config.sim)
    from tgispy.server._llama import LlamaBackend

    return LlamaBackend(config)


# --- small routes --------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 once the model is loaded, TGI's 503 before."""
    if request.app[FRONT_KEY].backend.ready:
        return web.Response()
    return web.Response(status=503, body=_UNHEALTHY, content_type=_JSON)


async def info(request: web.Request) -> web.Response:
    """``GET /info``."""
    return web.Response(body=request.app[FRONT_KEY].info_body, content_type=_JSON)


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    return web.Response(body=request.app[FRONT_KEY].models_body, content_type=_JSON)


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus' text format."""
    front = request.app[FRONT_KEY]
    text = front.metrics.render(in_flight=front.in_flight, ready=front.backend.ready)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def tokenize(request: web.Request) -> web.Response:
    """``POST /tokenize``: its own body cap, a bounded number at once, big ones off the loop.

    A 2 MB prompt held the event loop (and /health) for seconds: large bodies are decoded,
    tokenized and answered on worker threads, ``tokenize_workers`` at a time.
    """
    front = request.app[FRONT_KEY]
    raw = await front.read_raw(request, front.config.tokenize_bytes)
    async with front.tokenize_slot():
        big = len(raw) > OFF_LOOP_BYTES
        body = await asyncio.to_thread(decode_body, raw) if big else decode_body(raw)
        req = parse_generate(body)
        pieces = await front.backend.tokenize(req.inputs)
        if big:
            # The worker takes the only reference: the tokens die off the loop too.
            answer = await asyncio.to_thread(_answer_and_free, req.inputs, [pieces])
            del pieces
        else:
            answer = proto.tokenize_body(req.inputs, pieces)
    return web.Response(body=answer, content_type=_JSON)


def _answer_and_free(text: str, holder: list[list[tuple[int, bytes]]]) -> bytes:
    """``/tokenize``'s body, freeing the token list a slice at a time (worker thread).

    Freeing 600k tokens at once holds the GIL (so the event loop) for tens of milliseconds.
    """
    pieces = holder.pop()
    answer = proto.tokenize_body(text, pieces)
    while pieces:
        del pieces[-4096:]
        time.sleep(0)  # let the event loop's thread take the GIL between slices
    return answer


def _generation(front: Front, parse: Parser, faults: FaultPlan | None) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await pipeline.run(front, request, parse)

    if faults:
        return with_faults(
            faults, front.metrics.request_failed, handle, body_timeout_s=front.config.body_timeout_s
        )
    return handle


def create_app(config: ServerConfig, backend: Backend | None = None) -> web.Application:
    """Build the aiohttp application serving TGI's protocol over ``backend``.

    The backend (by default the one ``config.backend`` names) is started when the app starts,
    in the background: ``/health`` answers 503 until it is ready, and generation requests wait
    for it. Use it in-process with aiohttp's test server or ``AppRunner``; :func:`serve` runs it
    behind a :class:`~tgispy.server._guard.GuardedSite` (connection cap and timeouts).

    Args:
        config: limits and backend settings.
        backend: an engine to serve instead of the one ``config`` names (tests, custom engines).

    Example:
        >>> from tgispy.server import ServerConfig, create_app
        >>> app = create_app(ServerConfig(backend="sim"))
        >>> sorted(r.resource.canonical for r in app.router.routes())[:3]
        ['/', '/generate', '/generate_stream']
    """
    front = Front(config, backend if backend is not None else make_backend(config))
    guard = ConnectionGuard(
        max_connections=config.max_connections or default_max_connections(),
        header_timeout_s=config.header_timeout_s,
        keepalive_timeout_s=config.keepalive_timeout_s,
    )
    stack: list[Middleware] = [
        guard.middleware,
        middlewares.problems(front),
        middlewares.metrics(front),
        middlewares.readiness(front),
    ]
    app = web.Application(client_max_size=config.payload_limit, middlewares=stack)
    app[FRONT_KEY] = front
    app[GUARD_KEY] = guard
    app.on_startup.append(front.on_startup)
    app.on_cleanup.append(front.on_cleanup)
    # The sim's faults, when it has some, are injected where the route's own code starts.
    faults = FaultPlan(config.sim) if config.backend == "sim" else None
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/", _generation(front, parse_compat_route, faults)),
        ("POST", ENDPOINTS["generate"].path, _generation(front, parse_generate_route, faults)),
        ("POST", ENDPOINTS["generate_stream"].path, _generation(front, parse_stream_route, faults)),
        ("POST", ENDPOINTS["chat"].path, _generation(front, parse_chat_route, faults)),
        (
            "POST",
            ENDPOINTS["completions"].path,
            _generation(front, parse_completions_route, faults),
        ),
        ("POST", "/tokenize", tokenize),
        ("GET", "/health", health),
        ("GET", "/info", info),
        ("GET", "/metrics", metrics),
        ("GET", "/v1/models", models),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app
