"""The simulator's fault injection, outside the production request path: a handler wrapper.

``create_app`` wraps the generation routes with :func:`with_faults` only when the sim backend
has fault rates. It draws one fault per generation request from a seeded RNG
(:class:`FaultPlan`, so a run is reproducible given the order of requests) and acts before the
route's own code: an error status, a malformed or truncated body, a dropped connection, a hang.
A stream dropped *mid-way* is the one fault the wrapper cannot cut by itself: it marks the
request (:func:`dropping`) and the sim engine aborts the connection half-way through the tokens.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import web

from tgispy.server import _problems as problems
from tgispy.server import _protocol as proto
from tgispy.server._config import SimConfig
from tgispy.server._problems import Problem
from tgispy.tgi._protocol import ENDPOINTS

__all__ = ["Fault", "FaultPlan", "dropping", "with_faults"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_JSON: Final = "application/json"
# Status faults that TGI itself produces: on streaming routes they arrive as SSE error events.
_TGI_STATUSES: Final = frozenset({422, 424, 429, 500})
#: routes that generate, and whether each always streams (``None``: the body's ``stream`` says)
_ROUTES: Final[dict[str, bool | None]] = {
    ENDPOINTS["generate"].path: False,
    ENDPOINTS["generate_stream"].path: True,
    "/": None,
    ENDPOINTS["chat"].path: None,
    ENDPOINTS["completions"].path: None,
}

#: the request whose stream the sim engine drops half-way (set by with_faults)
_DROPPING: contextvars.ContextVar[web.Request | None] = contextvars.ContextVar(
    "tgispy_sim_dropping", default=None
)


@dataclass(frozen=True)
class Fault:
    """A fault injected into one request.

    ``kind``: ``"status"`` (answer ``status``), ``"malformed"`` (invalid JSON), ``"truncated"``
    (body cut short), ``"drop"`` (close the connection; mid-stream on streaming routes), or
    ``"hang"`` (wait ``hang_s`` seconds, then answer normally).
    """

    kind: Literal["status", "malformed", "truncated", "drop", "hang"]
    status: int = 0
    hang_s: float = 0.0


class FaultPlan:
    """Which fault hits which request: one seeded draw per generation request.

    Example:
        >>> plan = FaultPlan(SimConfig(error_rates={503: 1.0}))
        >>> plan.draw()
        Fault(kind='status', status=503, hang_s=0.0)
    """

    def __init__(self, config: SimConfig) -> None:
        self._rng = random.Random(config.seed)
        self._table: list[tuple[float, Fault]] = []
        edge = 0.0
        for status, rate in sorted(config.error_rates.items()):
            if rate > 0:
                edge += rate
                self._table.append((edge, Fault("status", status=status)))
        kinds: tuple[tuple[Literal["malformed", "truncated", "drop", "hang"], float], ...] = (
            ("malformed", config.malformed_rate),
            ("truncated", config.truncated_rate),
            ("drop", config.drop_rate),
            ("hang", config.hang_rate),
        )
        for kind, rate in kinds:
            if rate > 0:
                edge += rate
                self._table.append((edge, Fault(kind, hang_s=config.hang_s)))

    def __bool__(self) -> bool:
        return bool(self._table)

    def draw(self) -> Fault | None:
        """The next request's fault (``None``: behave)."""
        if not self._table:
            return None
        draw = self._rng.random()
        for edge, fault in self._table:
            if draw < edge:
                return fault
        return None


def dropping() -> web.Request | None:
    """For the sim engine: the request whose stream drew a ``drop`` fault (``None``: none).

    The engine aborts its connection before token ``max(1, max_new_tokens // 2)`` or before
    the end, whichever comes first.
    """
    return _DROPPING.get()


def _fault_problem(status: int) -> Problem:
    if status == 422:
        return problems.validation("simulated fault")
    if status == 424:
        return problems.generation("simulated fault")
    if status == 429:
        return problems.overloaded()
    if status == 500:
        return problems.incomplete()
    kind = "unavailable" if status in (502, 503, 504) else "simulated"
    return Problem(status, f"simulated HTTP {status}", kind)


async def _streams(request: web.Request, always: bool | None, timeout_s: float) -> bool:
    """Whether the request asks for a stream (peeking at a JSON body's ``stream``)."""
    if always is not None:
        return always
    try:
        async with asyncio.timeout(timeout_s):
            body = json.loads(await request.read())
    except (ValueError, TimeoutError, web.HTTPException):
        return False
    return isinstance(body, dict) and body.get("stream") is True


def with_faults(
    plan: FaultPlan,
    record_failure: Callable[[str], None],
    handler: Handler,
    *,
    body_timeout_s: float = 30.0,
) -> Handler:
    """``handler`` (a generation route's) with ``plan``'s faults injected in front of it.

    Installed innermost, where the route's own code would be: middlewares an application adds
    see faulted requests as they see any other. ``record_failure(error_type)`` counts the
    error answers it makes up (the server's metrics).
    """

    async def inject(request: web.Request) -> web.StreamResponse:
        always = _ROUTES.get(request.path)
        fault = plan.draw()
        if fault is None:
            return await handler(request)
        if fault.kind == "hang":
            await asyncio.sleep(fault.hang_s)
            return await handler(request)
        stream = await _streams(request, always, body_timeout_s)
        openai = request.path.startswith("/v1/")
        if fault.kind == "drop":
            if not stream:
                return _abort(request)
            token = _DROPPING.set(request)
            try:
                return await handler(request)
            finally:
                _DROPPING.reset(token)
        if fault.kind == "status":
            problem = _fault_problem(fault.status)
            if stream and fault.status in _TGI_STATUSES:
                resp = web.StreamResponse(headers=_SSE_HEADERS)
                await resp.prepare(request)
                if openai:
                    await resp.write(proto.openai_stream_error(problem) + proto.DONE)
                else:
                    await resp.write(proto.sse(problem.body()))
                await resp.write_eof()
                return resp
            record_failure(problem.error_type)
            return web.Response(
                status=problem.status,
                body=problem.body(),
                content_type=problem.content_type.split(";")[0],
            )
        if fault.kind == "malformed":
            if stream:
                resp = web.StreamResponse(headers=_SSE_HEADERS)
                await resp.prepare(request)
                await resp.write(b'data: {"index":1,"token":{"id":\n\n')
                await resp.write_eof()
                return resp
            return web.Response(body=b'{"generated_text": "simulated malformed', content_type=_JSON)
        # truncated
        if stream:
            resp = web.StreamResponse(headers=_SSE_HEADERS)
            await resp.prepare(request)
            await resp.write(b'data: {"index":1,"token":{"id":11,"te')
        else:
            body = b'{"generated_text":"simulated truncated body","details":null}'
            resp = web.StreamResponse(headers={"Content-Type": _JSON})
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()
        return resp

    return inject


def _abort(request: web.Request) -> web.Response:
    """Drop the connection: the client sees a disconnect, not a response."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()
