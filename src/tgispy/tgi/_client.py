"""The async TGI client core: replicas, ``/info``, routing and the one retry driver.

:class:`TGIClient` speaks TGI's HTTP protocol to a set of replicas through an
:class:`~tgispy.tgi._transport.AsyncTransport`. It owns no protocol logic of its own: request
bodies come from :mod:`._request`, parsing from :mod:`._response`, error mapping from
:mod:`._errors`, replica choice from :mod:`._routing` and retry decisions from :mod:`._retry`.
This module only drives them: it is the thin I/O shell around the pure cores.

The driver is :class:`_Attempts`, used by both :meth:`TGIClient.post` and :meth:`TGIClient.stream`
in tenacity's shape::

    async for attempt in self._attempts(plan):
        async with attempt:
            ...  # one try on attempt.url; an exception here is recorded, the loop decides
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from tgispy._json import dumps_bytes
from tgispy._sync import on_loop_shutdown
from tgispy.errors import (
    ConnectError,
    MalformedResponseError,
    TGIError,
    TGITimeoutError,
    TransportError,
)
from tgispy.tgi import _tracing
from tgispy.tgi._affinity import body_key, current_route_key
from tgispy.tgi._discovery import Discovery, Resolver, resolve_host
from tgispy.tgi._errors import error_from_response
from tgispy.tgi._info import ServerInfo
from tgispy.tgi._load import LOAD_SOURCES, LoadParseError
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout
from tgispy.tgi._response import ChatChunk, StreamEvent, parse_chat_chunk, parse_stream_event
from tgispy.tgi._retry import DEADLINE, DoAttempt, DoSleep, GiveUp, RetryBudget, RetryPlan
from tgispy.tgi._routing import NoneAvailable, Pick, Probe, ReplicaSet, Wait
from tgispy.tgi._secrets import Secrets
from tgispy.tgi._sse import SSEDecoder
from tgispy.tgi._transport import (
    AsyncTransport,
    AttemptTimeouts,
    HTTPRequest,
    HTTPResponse,
    default_transport,
)

__all__ = ["Meta", "TGIClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: how long a failed /info fetch is remembered before trying again
_INFO_RETRY_AFTER = 30.0
#: the longest a first call waits for the replicas' /info (a silent replica must not stall it)
_INFO_WAIT = 5.0

Sleep = Callable[[float], Awaitable[object]]

#: how a streamed body is cut into events: SSE (TGI, OpenAI-compatible) or one JSON per line
Framing = Literal["sse", "ndjson"]


class ErrorMapper(Protocol):
    """Maps a non-2xx reply to the error tree (``error_from_response``, or an engine dialect's)."""

    def __call__(
        self,
        status: int,
        body: bytes | str,
        *,
        replica: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TGIError: ...


class _LineDecoder:
    """Splits an NDJSON body into its non-empty lines, across chunk boundaries (UTF-8)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[str]:
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        return [self._decode(line) for line in lines if line.strip()]

    def close(self) -> list[str]:
        rest, self._buffer = self._buffer, b""
        return [self._decode(rest)] if rest.strip() else []

    @staticmethod
    def _decode(line: bytes) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedResponseError(f"a stream line is not UTF-8: {exc}") from None


@dataclass(frozen=True)
class Meta:
    """Where and how a request was served."""

    replica: str
    headers: Mapping[str, str]
    latency: float
    attempts: int


class TGIClient:
    """Async client for one or more TGI replicas that behave as one server.

    Args:
        urls: replica base URLs (see :func:`tgispy.tgi._endpoints.replica_urls`).
        headers: extra headers for every request (``Authorization`` ...); never logged.
        verify: TLS verification (``True``, ``False`` or a CA bundle path), for the default
            transport (a transport passed in has its own).
        timeout: per-attempt timeouts.
        retry: the retry policy (attempts, backoff, deadline, budget).
        routing: the routing policy (strategy, in-flight caps, ejection).
        rng: random source for jitter and routing.
        transport: the HTTP transport (default: :func:`~tgispy.tgi._transport.default_transport`,
            tgispy's FastTransport with ``tgispy[speed]``, else aiohttp's).
        secrets: extra credential strings to scrub from replies (URL userinfo, tokens), on top of
            the header values.
        clock: monotonic seconds, for deadlines, routing and the retry budget (tests inject one).
        sleep: the async sleep used for backoff and waits (tests inject one).
        health_path: the route probed before an ejected replica takes traffic again
            (``/health``; Ollama answers ``GET /``).
        resolver: async ``(host, port) -> addresses`` for ``RoutingPolicy(discovery_interval=)``
            (default: the event loop's ``getaddrinfo``).

    With ``RoutingPolicy(server_load=...)`` or ``discovery_interval``, the first request starts
    one background task (on its event loop) that polls each replica's load report and
    re-resolves the replica names at their intervals; :meth:`stop_background` ends it, and it
    ends with its loop.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        routing: RoutingPolicy | None = None,
        rng: random.Random | None = None,
        transport: AsyncTransport | None = None,
        secrets: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        resolver: Resolver | None = None,
        health_path: str = "/health",
    ) -> None:
        self.urls = tuple(urls)
        self.timeout = timeout or Timeout()
        self.retry = retry or RetryPolicy()
        self.routing = routing or RoutingPolicy()
        self.clock = clock
        self._sleep = sleep
        self._health_path = health_path
        self._rng = rng or random.Random()
        self._transport: AsyncTransport = transport or default_transport(verify)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._get_headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        self._secrets = Secrets.collect(headers or {}, secrets)
        self._replicas = ReplicaSet(self.urls, self.routing, clock=clock, rng=self._rng)
        self._budget = RetryBudget(self.retry, clock=clock)
        self._info: dict[str, ServerInfo | None] = {}
        self._merged: ServerInfo | None = None
        self._info_complete = False
        self._info_failed_at: dict[str, float] = {}
        self._info_locks: dict[int, asyncio.Lock] = {}
        # ---- fleet extras (issue 18): each is off unless its policy asks for it ----
        self._affinity = self.routing.strategy == "prefix"
        source = self.routing.server_load
        self._load_source = LOAD_SOURCES[source] if source is not None else None
        self._discovery: Discovery | None = None
        if self.routing.discovery_interval is not None:
            discovery = Discovery(self.urls, resolver or resolve_host)
            self._discovery = discovery if discovery.active else None
        self._background = self._load_source is not None or self._discovery is not None
        self._background_task: asyncio.Task[None] | None = None
        self._load_ignored: set[str] = set()

    @property
    def transport(self) -> AsyncTransport:
        """The transport requests go through."""
        return self._transport

    # ---- /info --------------------------------------------------------------------------------
    def cached_info(self) -> ServerInfo | None:
        """The merged server limits when known, without any I/O."""
        return self._merged

    def _remember_info(self, url: str, info: ServerInfo) -> None:
        self._info[url] = info
        self._merged = _merge_infos([i for i in self._info.values() if i is not None])
        self._info_complete = all(u in self._info for u in self.urls)

    async def server_info(self, *, started_at: float | None = None) -> ServerInfo | None:
        """Fetch ``/info`` from every replica not yet known (once, cached) and merge the limits.

        The fetch counts against the request deadline of a call that started at ``started_at``.
        A replica that refuses the connection is marked down for routing, so first calls do not
        spend attempts on it. When no replica answers, returns ``None`` and callers validate only
        static rules.
        """
        if self._info_complete:  # the hot path: every replica's limits are known
            return self._merged
        now = self.clock()
        missing = [
            u
            for u in self.urls
            if u not in self._info
            and now - self._info_failed_at.get(u, -_INFO_RETRY_AFTER) >= _INFO_RETRY_AFTER
        ]
        if missing:
            lock = self._lock_for_loop()
            async with lock:
                missing = [u for u in missing if u not in self._info]
                if missing:
                    limit = self._info_limit(started_at)
                    await asyncio.gather(*(self._fetch_info(u, limit) for u in missing))
        return self._merged

    def _info_limit(self, started_at: float | None) -> float:
        limit = min(self.timeout.connect or _INFO_WAIT, _INFO_WAIT)
        if self.retry.deadline is not None and started_at is not None:
            # leave the deadline's second half for the request itself
            left = self.retry.deadline - (self.clock() - started_at)
            limit = min(limit, max(left / 2, 0.001))
        return limit

    def _lock_for_loop(self) -> asyncio.Lock:
        # One lock per event loop: sync callers in several threads each drive their own loop.
        key = id(asyncio.get_running_loop())
        lock = self._info_locks.get(key)
        if lock is None:
            lock = self._info_locks[key] = asyncio.Lock()
        return lock

    async def _fetch_info(self, url: str, limit: float) -> None:
        try:
            async with asyncio.timeout(limit):
                resp = await self.get(url, "/info", total=limit)
            if resp.status != 200:
                raise error_from_response(resp.status, resp.body, replica=url)
            info = ServerInfo.from_json(json.loads(resp.body))
        except Exception as exc:
            err = self._as_error(exc, url)
            logger.info("GET %s/info failed (%s); validating static rules only", url, err)
            self._info_failed_at[url] = self.clock()
            if isinstance(err, ConnectError):
                self._replicas.on_probe_result(url, False, str(err))
            return
        self._remember_info(url, info)
        self._replicas.set_capacity(url, info.max_concurrent_requests)

    # ---- one exchange -------------------------------------------------------------------------
    async def get(self, replica: str, path: str, *, total: float | None = 5.0) -> HTTPResponse:
        """``GET replica + path`` once, with no routing or retry (discovery, health).

        The body is scrubbed of the client's credentials like every reply.
        """
        request = HTTPRequest(
            "GET", replica + path, self._get_headers, timeouts=AttemptTimeouts(total, total, total)
        )
        return self._scrub(await self._transport.send(request))

    def _scrub(self, resp: HTTPResponse) -> HTTPResponse:
        if not self._secrets:
            return resp
        return HTTPResponse(resp.status, resp.headers, self._secrets.scrub_bytes(resp.body))

    def _as_error(self, exc: BaseException, replica: str) -> TGIError:
        """``exc`` as an error of the tree that names ``replica`` and carries no credential."""
        if isinstance(exc, TGIError):
            err = exc
        elif isinstance(exc, TimeoutError):
            err = TGITimeoutError(f"timed out talking to {replica}")
        else:
            err = TransportError(f"unexpected error talking to {replica}: {type(exc).__name__}")
        if err.replica is None:
            err.replica = replica
        if self._secrets:
            clean = self._secrets.scrub(err.message)
            if clean != err.message:
                err.message = clean
                err.args = (clean,)
        if err is not exc:
            err.__cause__ = exc
        return err

    # ---- requests -----------------------------------------------------------------------------
    def _plan(self, started_at: float | None) -> RetryPlan:
        return RetryPlan(
            self.retry,
            budget=self._budget,
            clock=self.clock,
            rng=self._rng,
            started_at=started_at,
            replicas=len(self.urls),
        )

    def _route_key(self, body: Mapping[str, Any], route_key: str | None) -> str | None:
        """The request's routing key (``"prefix"`` strategy only): the caller's, the enclosing
        :func:`~tgispy.tgi._affinity.route_key` block's, else the body's shared prefix."""
        if not self._affinity:
            return None
        if route_key is None:
            route_key = current_route_key()
        return route_key if route_key is not None else body_key(body)

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        parse: Callable[[HTTPResponse, str], T],
        *,
        started_at: float | None = None,
        route_key: str | None = None,
        errors: ErrorMapper = error_from_response,
    ) -> tuple[T, Meta]:
        """POST ``body`` to ``path`` on a healthy replica, retrying per policy; parse the reply.

        ``parse(response, replica)`` runs inside the attempt, so a malformed body counts as a
        failure of that replica and is retried elsewhere. ``started_at`` (this client's
        :attr:`clock`) is when the call began, for its deadline. ``route_key`` pins the request
        to the key's home replica under the ``"prefix"`` strategy (a session or user id);
        without one the key is the body's shared prompt prefix. ``errors`` maps a non-2xx
        reply to the error tree (TGI's mapping by default; each engine dialect has its own).
        """
        payload = dumps_bytes(body)
        key = self._route_key(body, route_key) if self._affinity else None
        if self._background:
            await self._start_background()
        span = _tracing.start_request(path, len(self.urls), key) if _tracing.ENABLED else None
        try:
            async for attempt in _Attempts(self, self._plan(started_at), key, span):
                async with attempt:
                    request = HTTPRequest(
                        "POST", attempt.url + path, attempt.headers, payload, attempt.timeouts
                    )
                    resp = self._scrub(await self._transport.send(request))
                    if resp.status >= 300:
                        raise errors(
                            resp.status, resp.body, replica=attempt.url, headers=resp.headers
                        )
                    result = parse(resp, attempt.url)
                    latency = attempt.succeed()
                    return result, Meta(attempt.url, resp.headers, latency, attempt.number)
        except BaseException as exc:
            if span is not None:
                _tracing.end(span, exc)
                span = None
            raise
        finally:
            if span is not None:
                _tracing.end(span)
        raise AssertionError("unreachable: the attempt loop returns or raises")  # pragma: no cover

    async def stream(
        self,
        path: str,
        body: Mapping[str, Any],
        parse: Callable[[str, str], T],
        *,
        last: Callable[[T], bool],
        started_at: float | None = None,
        route_key: str | None = None,
        errors: ErrorMapper = error_from_response,
        framing: Framing = "sse",
    ) -> AsyncIterator[T]:
        """POST a streaming request; yield ``parse(payload, replica)`` for each event: an SSE
        ``data`` field, or a line of an NDJSON body with ``framing="ndjson"`` (Ollama).

        Parsing runs inside the attempt, so an error event or a garbled event before the first
        good one is a failure of that replica and is retried (on another replica when one
        exists); after the first good event a failure is raised to the caller. The stream ends
        with the event for which ``last(event)`` is true; a stream that ends before it raises
        :class:`MalformedResponseError`. ``route_key``, ``errors``: as for :meth:`post`.
        """
        payload = dumps_bytes(body)
        key = self._route_key(body, route_key) if self._affinity else None
        if self._background:
            await self._start_background()
        span = _tracing.start_request(path, len(self.urls), key) if _tracing.ENABLED else None
        try:
            async for attempt in _Attempts(self, self._plan(started_at), key, span):
                async with attempt:
                    request = HTTPRequest(
                        "POST", attempt.url + path, attempt.headers, payload, attempt.timeouts
                    )
                    # Close the transport's generator as soon as we are done, so its connection
                    # goes back to the pool now rather than at garbage collection.
                    chunks = self._transport.stream(request)
                    payloads = self._payloads(chunks, attempt.url, errors, framing)
                    async with contextlib.aclosing(chunks), contextlib.aclosing(payloads):
                        async for data in payloads:
                            event = parse(data, attempt.url)
                            attempt.received = True
                            if last(event):
                                # Report before yielding: the consumer usually stops reading.
                                attempt.succeed()
                                yield event
                                return
                            yield event
                    raise MalformedResponseError(
                        "the stream ended before its final event", replica=attempt.url
                    )
        except BaseException as exc:
            if span is not None:
                _tracing.end(span, exc)
                span = None
            raise
        finally:
            if span is not None:
                _tracing.end(span)

    async def _payloads(
        self,
        chunks: AsyncIterator[HTTPResponse | bytes],
        replica: str,
        errors: ErrorMapper,
        framing: Framing,
    ) -> AsyncGenerator[str, None]:
        """The event payloads of a streamed body; a non-2xx head raises the mapped error."""
        decoder = SSEDecoder() if framing == "sse" else _LineDecoder()
        secrets = self._secrets
        async for item in chunks:
            if isinstance(item, HTTPResponse):
                if item.status >= 300:
                    head = self._scrub(item)
                    raise errors(head.status, head.body, replica=replica, headers=head.headers)
                continue
            for data in decoder.feed(item):
                yield secrets.scrub(data) if secrets else data
        for data in decoder.close():
            yield secrets.scrub(data) if secrets else data

    async def generate_stream(
        self, path: str, body: Mapping[str, Any], *, started_at: float | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Stream ``/generate_stream`` events; error events raise typed errors.

        A stream that ends without its final event raises :class:`MalformedResponseError`.
        """
        async for event in self.stream(
            path, body, _parse_stream_event, last=lambda e: e.is_final, started_at=started_at
        ):
            yield event

    async def chat_stream(
        self, body: Mapping[str, Any], *, started_at: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        """Stream ``/v1/chat/completions`` chunks until ``[DONE]``."""
        async for chunk in self.stream(
            "/v1/chat/completions",
            body,
            _parse_chat_chunk,
            last=lambda c: c is None,
            started_at=started_at,
        ):
            if chunk is None:
                return
            yield chunk

    # ---- routing ------------------------------------------------------------------------------
    async def _next_replica(
        self, plan: RetryPlan, step: DoAttempt | DoSleep | GiveUp, key: str | None = None
    ) -> tuple[str, DoAttempt]:
        """Follow the plan (sleeping, or raising when it gives up) to an attempt and its replica."""
        while True:
            if isinstance(step, GiveUp):
                raise step.error
            if isinstance(step, DoSleep):
                await self._sleep(step.seconds)
                step = plan.next_attempt()
                continue
            try:
                return await self._pick(step, plan, key), step
            except TGIError as no_replica:
                step = plan.after_failure(no_replica, replica=None)

    async def _pick(self, step: DoAttempt, plan: RetryPlan, key: str | None = None) -> str:
        while True:
            choice = self._replicas.choose(exclude=step.exclude, key=key)
            if isinstance(choice, Pick):
                return choice.url
            if isinstance(choice, Probe):
                ok, error = await self._probe(choice.url, plan)
                self._replicas.on_probe_result(choice.url, ok, error)
                continue
            if isinstance(choice, Wait):
                remaining = plan.remaining()
                if remaining is not None and remaining <= 0:
                    raise TGITimeoutError(
                        "request deadline expired while every replica was at its in-flight cap",
                        error_type=DEADLINE,
                    )
                delay = choice.seconds if remaining is None else min(choice.seconds, remaining)
                await self._sleep(delay)
                continue
            if isinstance(choice, NoneAvailable):
                raise choice.to_error()
            raise AssertionError(f"unknown routing choice {choice!r}")

    async def _probe(self, url: str, plan: RetryPlan) -> tuple[bool, str | None]:
        limit = min(self.timeout.connect or _INFO_WAIT, self.routing.probe_timeout)
        remaining = plan.remaining()
        if remaining is not None:
            limit = max(min(limit, remaining), 0.001)
        try:
            async with asyncio.timeout(limit):
                resp = await self.get(url, self._health_path, total=limit)
        except Exception as exc:
            return False, str(self._as_error(exc, url))
        if resp.status == 200:
            return True, None
        return False, f"GET {self._health_path} answered {resp.status}"

    def _timeouts(self, plan: RetryPlan) -> AttemptTimeouts:
        total = self.timeout.total
        remaining = plan.remaining()
        if remaining is not None:
            if remaining <= 0:
                raise plan.deadline_error()
            total = remaining if total is None else min(total, remaining)
        return AttemptTimeouts(self.timeout.connect, self.timeout.first_byte, total)

    # ---- background: server-reported load, live discovery (issue 18) --------------------------
    async def _start_background(self) -> None:
        """Start the background task on this loop unless one runs (on this loop or another that
        is still alive). The first start resolves the replica names before the request routes."""
        task = self._background_task
        if task is not None and not task.done() and not task.get_loop().is_closed():
            return
        first = task is None
        self._background_task = asyncio.get_running_loop().create_task(
            self._run_background(), name="tgispy-fleet-background"
        )
        _WITH_BACKGROUND.add(self)
        if first and self._discovery is not None:
            await self.discover_once()

    async def _run_background(self) -> None:
        # Real time, not the injected clock: these are timers, not part of any call's deadline.
        load_every = self.routing.load_poll_interval if self._load_source is not None else None
        discover_every = self.routing.discovery_interval if self._discovery is not None else None
        now = time.monotonic()
        next_load = now
        next_discovery = now + (discover_every or 0.0)  # the first request just resolved
        while True:
            if load_every is not None and time.monotonic() >= next_load:
                await self.poll_load_once()
                next_load = time.monotonic() + load_every
            if discover_every is not None and time.monotonic() >= next_discovery:
                await self.discover_once()
                next_discovery = time.monotonic() + discover_every
            due = [
                t
                for t, every in ((next_load, load_every), (next_discovery, discover_every))
                if every is not None
            ]
            await asyncio.sleep(max(min(due) - time.monotonic(), 0.01))

    async def stop_background(self) -> None:
        """Stop the background task (load polling, discovery); the next request restarts it."""
        task = self._background_task
        self._background_task = None
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def poll_load_once(self) -> None:
        """Read every replica's load report once (``RoutingPolicy(server_load=...)``).

        A report that fails, is slow (past the poll interval, at most 2 s) or does not parse is
        ignored, logged once per replica until it reads again; routing then uses this client's
        own in-flight counts for that replica, as when no load is known.
        """
        source = self._load_source
        if source is None:
            return
        limit = min(self.routing.load_poll_interval, 2.0)

        async def one(url: str) -> None:
            try:
                async with asyncio.timeout(limit):
                    resp = await self.get(url, source.path, total=limit)
                if resp.status != 200:
                    raise LoadParseError(f"GET {source.path} answered {resp.status}")
                load = source.parse(resp.body)
            except Exception as exc:
                self._replicas.on_load(url, None)
                if url not in self._load_ignored:
                    self._load_ignored.add(url)
                    logger.warning(
                        "ignoring the load report of %s (%s); routing on in-flight counts",
                        url,
                        self._as_error(exc, url) if not isinstance(exc, LoadParseError) else exc,
                    )
                return
            if url in self._load_ignored:
                self._load_ignored.discard(url)
                logger.info("the load report of %s reads again", url)
            self._replicas.on_load(url, load)

        await asyncio.gather(*(one(u) for u in self._replicas.urls))

    async def discover_once(self) -> None:
        """Resolve the replica names again and update the replica set (``discovery_interval``)."""
        if self._discovery is None:
            return
        urls = await self._discovery.refresh(timeout=min(self.timeout.connect or 5.0, 5.0))
        self._replicas.update(urls)
        self.urls = self._replicas.urls
        self._info_complete = all(u in self._info for u in self.urls)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99, and
        (``"prefix"`` strategy) keyed requests served at their home (``prefix_hits``) or
        spilled there (``prefix_spills``)."""
        return self._replicas.stats()


class _Attempts:
    """The one retry driver: iterates attempts as the plan says, each an :class:`_Attempt`.

    A failed attempt (its ``async with`` block raised) is recorded and the next ``__anext__``
    asks the plan what now: another attempt (after a sleep, on a replica chosen by the router) or
    give up, raising the plan's error. A successful attempt returns from the block.
    """

    __slots__ = ("_client", "_current", "_key", "_plan", "_span", "_step")

    def __init__(
        self, client: TGIClient, plan: RetryPlan, key: str | None = None, span: Any = None
    ) -> None:
        self._client = client
        self._plan = plan
        self._key = key
        self._span = span  # the request's tracing span (None: tracing is off)
        self._step: DoAttempt | DoSleep | GiveUp = plan.first()
        self._current: _Attempt | None = None

    def __aiter__(self) -> _Attempts:
        return self

    async def __anext__(self) -> _Attempt:
        current = self._current
        if current is not None:
            if current.error is None:
                raise StopAsyncIteration  # the block neither returned nor failed: done
            self._step = self._plan.after_failure(
                current.error, replica=current.url, first_token_received=current.received
            )
        client = self._client
        url, step = await client._next_replica(self._plan, self._step, self._key)
        self._current = _Attempt(
            client, url, step.attempt, client._timeouts(self._plan), self._span
        )
        return self._current


class _Attempt:
    """One try on one replica: reports its outcome to the router when its block exits.

    An ``Exception`` inside the block is recorded (and suppressed, so the driver can retry)
    unless the stream already delivered events, in which case it propagates as a typed error.
    Cancellation or a consumer that stops reading frees the replica's slot with no health verdict.
    """

    __slots__ = (
        "_client",
        "_reported",
        "_started",
        "error",
        "headers",
        "number",
        "received",
        "span",
        "timeouts",
        "url",
    )

    def __init__(
        self,
        client: TGIClient,
        url: str,
        number: int,
        timeouts: AttemptTimeouts,
        request_span: Any = None,
    ) -> None:
        self._client = client
        self.url = url
        self.number = number
        self.timeouts = timeouts
        self.received = False
        self.error: TGIError | None = None
        self._reported = False
        self._started = 0.0
        self.headers: Mapping[str, str] = client._headers
        self.span: Any = None
        if request_span is not None:  # tracing: this try's span, its traceparent in the headers
            self.span, self.headers = _tracing.start_attempt(
                request_span, url, number, client._headers
            )

    def _end_span(self, error: BaseException | None = None) -> None:
        if self.span is not None:
            _tracing.end(self.span, error)
            self.span = None

    def succeed(self) -> float:
        """Report success now (before yielding a stream's final event); returns the latency."""
        latency = self._client.clock() - self._started
        if not self._reported:
            self._reported = True
            self._client._replicas.on_success(self.url, latency)
            if self.span is not None:
                self._end_span()
        return latency

    async def __aenter__(self) -> _Attempt:
        self._client._replicas.on_start(self.url)
        self._started = self._client.clock()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        client = self._client
        if exc is None:
            self.succeed()
            return False
        if self._reported:
            return False  # the stream's consumer stopped after the final event
        self._reported = True
        if not isinstance(exc, Exception):
            # Cancelled, or the consumer stopped reading: free the slot, no health verdict.
            client._replicas.on_failure(self.url, exc)
            if self.span is not None:
                self._end_span(exc)
            return False
        err = client._as_error(exc, self.url)
        client._replicas.on_failure(self.url, err, latency=client.clock() - self._started)
        if self.span is not None:
            self._end_span(err)
        logger.debug("attempt %d on %s failed: %s", self.number, self.url, err)
        if self.received:
            if err is exc:
                return False
            raise err  # _as_error chained the cause
        self.error = err
        return True


#: clients whose background task may be running, stopped when the sync face's loop shuts down
_WITH_BACKGROUND: weakref.WeakSet[TGIClient] = weakref.WeakSet()


async def _stop_backgrounds() -> None:
    loop = asyncio.get_running_loop()
    for client in list(_WITH_BACKGROUND):
        task = client._background_task
        if task is not None and task.get_loop() is loop:
            await client.stop_background()


on_loop_shutdown(_stop_backgrounds)


def _parse_stream_event(data: str, replica: str) -> StreamEvent:
    return parse_stream_event(data, replica=replica)


def _parse_chat_chunk(data: str, replica: str) -> ChatChunk | None:
    return parse_chat_chunk(data, replica=replica)


def _merge_infos(infos: Sequence[ServerInfo]) -> ServerInfo | None:
    """The limits every replica accepts: the minimum of each known integer limit; the model and
    pipeline of the first, the version of the oldest."""
    if len(infos) <= 1:
        return infos[0] if infos else None
    limits: dict[str, Any] = {}
    for f in dataclasses.fields(ServerInfo):
        values = [getattr(i, f.name) for i in infos]
        ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        if ints and all(v is None or isinstance(v, int) for v in values):
            limits[f.name] = min(ints)
    versions = [i for i in infos if i.version_tuple is not None]
    oldest = min(versions, key=lambda i: i.version_tuple or (0, 0, 0)) if versions else infos[0]
    return dataclasses.replace(infos[0], version=oldest.version, **limits)
