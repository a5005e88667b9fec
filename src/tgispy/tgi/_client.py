"""The async TGI client core: replicas, ``/info``, routing and the retry driver.

:class:`TGIClient` speaks TGI's HTTP protocol to a set of replicas. It owns no protocol logic of its
own: request bodies come from :mod:`._request`, parsing from :mod:`._response`, error mapping from
:mod:`._errors`, replica choice from :mod:`._routing` and retry decisions from :mod:`._retry`. This
module only drives them: it is the thin I/O shell around the pure cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from tgispy.errors import MalformedResponseError, TGIError, TGITimeoutError
from tgispy.tgi._errors import error_from_response
from tgispy.tgi._info import ServerInfo
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout
from tgispy.tgi._response import (
    ChatChunk,
    StreamEvent,
    parse_chat_chunk,
    parse_stream_event,
)
from tgispy.tgi._retry import DEADLINE, DoAttempt, DoSleep, GiveUp, RetryBudget, RetryPlan
from tgispy.tgi._routing import NoneAvailable, Pick, Probe, ReplicaSet, Wait
from tgispy.tgi._sse import SSEDecoder
from tgispy.tgi._transport import HTTPResponse, Transport, translate_exception

__all__ = ["Meta", "TGIClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: how long a failed /info fetch is remembered before trying again
_INFO_RETRY_AFTER = 30.0


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
        verify: TLS verification (``True``, ``False`` or a CA bundle path).
        timeout: per-attempt timeouts.
        retry: the retry policy (attempts, backoff, deadline, budget).
        routing: the routing policy (strategy, in-flight caps, ejection).
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
    ) -> None:
        self.urls = tuple(urls)
        self.timeout = timeout or Timeout()
        self.retry = retry or RetryPolicy()
        self.routing = routing or RoutingPolicy()
        self._rng = rng or random.Random()
        self._transport = Transport(headers=headers, verify=verify)
        self._replicas = ReplicaSet(self.urls, self.routing, rng=self._rng)
        self._budget = RetryBudget(self.retry)
        self._info: dict[str, ServerInfo | None] = {}
        self._info_failed_at: dict[str, float] = {}
        self._info_locks: dict[int, asyncio.Lock] = {}

    # ---- /info --------------------------------------------------------------------------------
    def cached_info(self) -> ServerInfo | None:
        """The merged server limits when known, without any I/O."""
        infos = [i for i in self._info.values() if i is not None]
        return _merge_infos(infos) if infos else None

    async def server_info(self) -> ServerInfo | None:
        """Fetch ``/info`` from every replica not yet known (once, cached) and merge the limits.

        When no replica answers, returns ``None`` and callers validate only static rules.
        """
        now = time.monotonic()
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
                    await asyncio.gather(*(self._fetch_info(u) for u in missing))
        return self.cached_info()

    def _lock_for_loop(self) -> asyncio.Lock:
        # One lock per event loop: sync callers in several threads each drive their own loop.
        key = id(asyncio.get_running_loop())
        lock = self._info_locks.get(key)
        if lock is None:
            lock = self._info_locks[key] = asyncio.Lock()
        return lock

    async def _fetch_info(self, url: str) -> None:
        try:
            resp = await self._transport.get(url + "/info", total=self.timeout.connect or 5.0)
            if resp.status != 200:
                raise error_from_response(resp.status, resp.body, replica=url)
            info = ServerInfo.from_json(json.loads(resp.body))
        except (TGIError, ValueError, OSError, TimeoutError) as exc:
            logger.info("GET %s/info failed (%s); validating static rules only", url, exc)
            self._info_failed_at[url] = time.monotonic()
            return
        except Exception as exc:
            err = translate_exception(exc, url)
            logger.info("GET %s/info failed (%s); validating static rules only", url, err)
            self._info_failed_at[url] = time.monotonic()
            return
        self._info[url] = info
        self._replicas.set_capacity(url, info.max_concurrent_requests)

    # ---- requests -----------------------------------------------------------------------------
    async def post(
        self, path: str, body: Mapping[str, Any], parse: Callable[[HTTPResponse, str], T]
    ) -> tuple[T, Meta]:
        """POST ``body`` to ``path`` on a healthy replica, retrying per policy; parse the reply.

        ``parse(response, replica)`` runs inside the attempt, so a malformed body counts as a
        failure of that replica and is retried elsewhere.
        """
        payload = json.dumps(body, ensure_ascii=False).encode()
        plan = RetryPlan(self.retry, budget=self._budget, rng=self._rng)
        step: DoAttempt | DoSleep | GiveUp = plan.first()
        while True:
            url, attempt = await self._next_replica(plan, step)
            started = time.monotonic()
            self._replicas.on_start(url)
            try:
                resp = await self._transport.post(url + path, payload, **self._timeouts(plan))
                if resp.status >= 300:
                    raise error_from_response(
                        resp.status, resp.body, replica=url, headers=resp.headers
                    )
                result = parse(resp, url)
            except Exception as exc:
                err = translate_exception(exc, url)
                self._replicas.on_failure(url, err, latency=time.monotonic() - started)
                logger.debug("attempt %d on %s failed: %s", attempt.attempt, url, err)
                step = plan.after_failure(err, replica=url)
                continue
            except BaseException as exc:
                # Cancelled (a caller's timeout): free the in-flight slot, with no health verdict,
                # or the replica would look busy forever and end up never chosen again.
                self._replicas.on_failure(url, exc)
                raise
            latency = time.monotonic() - started
            self._replicas.on_success(url, latency)
            return result, Meta(url, resp.headers, latency, attempt.attempt)

    async def stream(
        self,
        path: str,
        body: Mapping[str, Any],
        parse: Callable[[str, str], T],
        *,
        last: Callable[[T], bool],
    ) -> AsyncIterator[T]:
        """POST a streaming request; yield ``parse(data_payload, replica)`` for each SSE event.

        Parsing runs inside the attempt, so an error event or a garbled event before the first
        good one is a failure of that replica and is retried (on another replica when one
        exists); after the first good event a failure is raised to the caller. The stream ends
        with the event for which ``last(event)`` is true; a stream that ends before it raises
        :class:`MalformedResponseError`.
        """
        payload = json.dumps(body, ensure_ascii=False).encode()
        plan = RetryPlan(self.retry, budget=self._budget, rng=self._rng)
        step: DoAttempt | DoSleep | GiveUp = plan.first()
        while True:
            url, _ = await self._next_replica(plan, step)
            started = time.monotonic()
            self._replicas.on_start(url)
            received = False
            reported = False  # whether the replica set has heard how this attempt ended
            try:
                # Transport.stream is an async generator: close it as soon as we are done, so
                # its connection goes back to the pool now rather than at garbage collection.
                chunks = cast(
                    "AsyncGenerator[HTTPResponse | bytes, None]",
                    self._transport.stream(url + path, payload, **self._timeouts(plan)),
                )
                payloads = _sse_payloads(chunks, url)
                async with contextlib.aclosing(chunks), contextlib.aclosing(payloads):
                    async for data in payloads:
                        event = parse(data, url)
                        received = True
                        if last(event):
                            # Report before yielding: the consumer usually stops reading here.
                            reported = True
                            self._replicas.on_success(url, time.monotonic() - started)
                            yield event
                            return
                        yield event
                raise MalformedResponseError("the stream ended before its final event", replica=url)
            except Exception as exc:
                err = translate_exception(exc, url)
                self._replicas.on_failure(url, err, latency=time.monotonic() - started)
                if received:
                    raise err  # noqa: B904 - translate_exception attached the cause
                step = plan.after_failure(err, replica=url, first_token_received=received)
                continue
            except BaseException as exc:
                # The consumer stopped reading (GeneratorExit) or was cancelled: free the slot,
                # with no health verdict, unless the final event already reported success.
                if not reported:
                    self._replicas.on_failure(url, exc)
                raise

    async def generate_stream(
        self, path: str, body: Mapping[str, Any]
    ) -> AsyncIterator[StreamEvent]:
        """Stream ``/generate_stream`` events; error events raise typed errors.

        A stream that ends without its final event raises :class:`MalformedResponseError`.
        """
        async for event in self.stream(path, body, _parse_stream_event, last=lambda e: e.is_final):
            yield event

    async def chat_stream(self, body: Mapping[str, Any]) -> AsyncIterator[ChatChunk]:
        """Stream ``/v1/chat/completions`` chunks until ``[DONE]``."""
        async for chunk in self.stream(
            "/v1/chat/completions", body, _parse_chat_chunk, last=lambda c: c is None
        ):
            if chunk is None:
                return
            yield chunk

    # ---- routing ------------------------------------------------------------------------------
    async def _next_replica(
        self, plan: RetryPlan, step: DoAttempt | DoSleep | GiveUp
    ) -> tuple[str, DoAttempt]:
        """Follow the plan (sleeping, or raising when it gives up) to an attempt and its replica."""
        while True:
            if isinstance(step, GiveUp):
                raise step.error
            if isinstance(step, DoSleep):
                await asyncio.sleep(step.seconds)
                step = plan.next_attempt()
                continue
            try:
                return await self._pick(step, plan), step
            except TGIError as no_replica:
                step = plan.after_failure(no_replica, replica=None)

    async def _pick(self, step: DoAttempt, plan: RetryPlan) -> str:
        while True:
            choice = self._replicas.choose(exclude=step.exclude)
            if isinstance(choice, Pick):
                return choice.url
            if isinstance(choice, Probe):
                ok, error = await self._probe(choice.url)
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
                await asyncio.sleep(delay)
                continue
            if isinstance(choice, NoneAvailable):
                raise choice.to_error()
            raise AssertionError(f"unknown routing choice {choice!r}")

    async def _probe(self, url: str) -> tuple[bool, str | None]:
        try:
            resp = await self._transport.get(url + "/health", total=self.timeout.connect or 5.0)
        except Exception as exc:
            return False, str(translate_exception(exc, url))
        if resp.status == 200:
            return True, None
        return False, f"GET /health answered {resp.status}"

    def _timeouts(self, plan: RetryPlan) -> dict[str, float | None]:
        total = self.timeout.total
        remaining = plan.remaining()
        if remaining is not None:
            total = remaining if total is None else min(total, remaining)
        return {"connect": self.timeout.connect, "read": self.timeout.first_byte, "total": total}

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99."""
        return self._replicas.stats()


async def _sse_payloads(
    chunks: AsyncIterator[HTTPResponse | bytes], replica: str
) -> AsyncGenerator[str, None]:
    """The ``data`` payloads of an SSE response; a non-2xx head raises the mapped error."""
    decoder = SSEDecoder()
    async for item in chunks:
        if isinstance(item, HTTPResponse):
            if item.status >= 300:
                raise error_from_response(
                    item.status, item.body, replica=replica, headers=item.headers
                )
            continue
        for data in decoder.feed(item):
            yield data
    for data in decoder.close():
        yield data


def _parse_stream_event(data: str, replica: str) -> StreamEvent:
    return parse_stream_event(data, replica=replica)


def _parse_chat_chunk(data: str, replica: str) -> ChatChunk | None:
    return parse_chat_chunk(data, replica=replica)


def _merge_infos(infos: Sequence[ServerInfo]) -> ServerInfo:
    """The limits every replica accepts: the minimum of each known limit."""
    if len(infos) == 1:
        return infos[0]

    def low(name: str) -> int | None:
        values = [getattr(i, name) for i in infos if getattr(i, name) is not None]
        return min(values) if values else None

    versions = [i for i in infos if i.version_tuple is not None]
    oldest = min(versions, key=lambda i: i.version_tuple or (0, 0, 0)) if versions else infos[0]
    return ServerInfo(
        model_id=infos[0].model_id,
        version=oldest.version,
        max_input_tokens=low("max_input_tokens"),
        max_total_tokens=low("max_total_tokens"),
        max_best_of=low("max_best_of"),
        max_stop_sequences=low("max_stop_sequences"),
        max_concurrent_requests=low("max_concurrent_requests"),
        max_client_batch_size=low("max_client_batch_size"),
        model_pipeline_tag=infos[0].model_pipeline_tag,
    )
