"""The state one server shares between its routes, middlewares and pipeline: :class:`Front`.

Lifecycle and readiness of the engine, TGI's permits (``max_concurrent_requests``), reading JSON
bodies with axum's rejections and a body timeout, planning a generation (tokenize, lengths,
grammar), metrics and the error answer of a :class:`~tgispy.server._problems.Problem`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web

from tgispy.server import _problems as problems
from tgispy.server import _protocol as proto
from tgispy.server._config import VERSION, ServerConfig
from tgispy.server._generation import Generation, Plan
from tgispy.server._grammar import to_engine_grammar
from tgispy.server._metrics import Metrics
from tgispy.server._problems import Problem
from tgispy.server._types import Backend
from tgispy.server._validation import Limits, Validated, decode_body, resolve_lengths
from tgispy.tgi._protocol import info_document

__all__ = ["OFF_LOOP_BYTES", "Front"]

logger = logging.getLogger(__name__)

_JSON: Final = "application/json"
#: bodies larger than this are decoded (and /tokenize answered) on a worker thread
OFF_LOOP_BYTES: Final = 65_536


class Front:
    """State of one server: one backend, one set of limits, one metrics set.

    Attributes:
        config: the server's configuration.
        backend: the engine.
        limits: what validation checks against (``/info`` reports them).
        metrics: the ``/metrics`` counters.
        in_flight: permits taken (TGI's ``max_concurrent_requests`` semaphore).
    """

    def __init__(self, config: ServerConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.limits = Limits(
            max_best_of=config.max_best_of,
            max_stop_sequences=config.max_stop_sequences,
            max_top_n_tokens=config.max_top_n_tokens,
            max_input_tokens=config.limits_input,
            max_total_tokens=config.limits_total,
            max_client_batch_size=config.max_client_batch_size,
        )
        self.metrics = Metrics()
        self.in_flight = 0
        self.model_id = config.resolved_model_id()
        self.fingerprint = f"{VERSION}-native"
        self.compute_type = f"cpu+{backend.name}"
        self.load_task: asyncio.Task[None] | None = None
        self.load_error: BaseException | None = None
        self.tokenize_slots = asyncio.Semaphore(config.tokenize_workers)
        self.tokenize_waiting = 0
        self.info_body = proto.dumps(
            info_document(
                model_id=self.model_id,
                max_concurrent_requests=config.max_concurrent_requests,
                max_best_of=config.max_best_of,
                max_stop_sequences=config.max_stop_sequences,
                max_input_tokens=config.limits_input,
                max_total_tokens=config.limits_total,
                validation_workers=config.tokenize_workers,
                max_client_batch_size=config.max_client_batch_size,
                version=VERSION,
            )
        )
        self.models_body = proto.dumps(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model_id,
                        "object": "model",
                        "created": 0,
                        "owned_by": self.model_id,
                    }
                ],
            }
        )

    # --- lifecycle -----------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        """Start loading the model in the background (``/health`` answers 503 meanwhile)."""
        self.load_task = asyncio.create_task(self._load(), name="tgispy-load-model")

    async def _load(self) -> None:
        try:
            await self.backend.start()
        except BaseException as exc:
            self.load_error = exc
            logger.error("the model failed to load: %s", exc)
            raise

    async def on_cleanup(self, app: web.Application) -> None:
        """Stop loading (if still at it) and close the engine."""
        if self.load_task is not None and not self.load_task.done():
            self.load_task.cancel()
        if self.load_task is not None:
            with contextlib.suppress(BaseException):
                await self.load_task
        await self.backend.aclose()

    async def wait_ready(self) -> None:
        """Wait for the model to load (raises 503 if it failed)."""
        if self.backend.ready:
            return
        if self.load_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self.load_task)
        if not self.backend.ready:
            detail = f": {self.load_error}" if self.load_error is not None else ""
            raise problems.unavailable(f"the model is not loaded{detail}")

    # --- limits ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def permits(self, n: int) -> Iterator[None]:
        """Hold ``n`` permits of ``max_concurrent_requests`` (TGI's ``try_acquire``: 429 now
        rather than a wait)."""
        if self.in_flight + n > self.config.max_concurrent_requests:
            raise problems.overloaded()
        self.in_flight += n
        try:
            yield
        finally:
            self.in_flight -= n

    @contextlib.asynccontextmanager
    async def tokenize_slot(self) -> AsyncIterator[None]:
        """One of ``tokenize_workers`` slots; 429 when ``max_concurrent_requests`` already wait."""
        if self.tokenize_waiting >= self.config.max_concurrent_requests:
            raise problems.overloaded()
        self.tokenize_waiting += 1
        try:
            await self.tokenize_slots.acquire()
        finally:
            self.tokenize_waiting -= 1
        try:
            yield
        finally:
            self.tokenize_slots.release()

    # --- bodies ----------------------------------------------------------------------------

    async def read_raw(self, request: web.Request, limit: int) -> bytes:
        """The JSON body's bytes, with axum's rejections for media type and size (> ``limit``).

        A body that does not arrive within ``body_timeout_s`` is answered 408 and its
        connection closed: it would hold the connection (and its memory) for ever.
        """
        content_type = request.content_type
        if content_type != _JSON and not content_type.endswith("+json"):
            raise problems.unsupported_media_type()
        length = request.content_length
        if length is not None and length > limit:
            raise problems.payload_too_large()
        try:
            async with asyncio.timeout(self.config.body_timeout_s):
                # aiohttp keeps the body: the sim's fault middleware may have read it already.
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise problems.payload_too_large() from exc
        except TimeoutError as exc:
            problem = problems.body_timeout(self.config.body_timeout_s)
            # Answer and close now: aiohttp would otherwise linger, reading the rest of the body.
            answer_and_close(request, problem)
            raise problem from exc
        if len(raw) > limit:
            raise problems.payload_too_large()
        return raw

    async def read_json(self, request: web.Request) -> Any:
        """The body as JSON, with axum's rejections for size, media type and syntax."""
        raw = await self.read_raw(request, self.config.payload_limit)
        if len(raw) > OFF_LOOP_BYTES:
            return await asyncio.to_thread(decode_body, raw)
        return decode_body(raw)

    def error_response(self, problem: Problem) -> web.Response:
        """``problem`` as TGI's answer (counted in the metrics by its ``error_type``)."""
        self.metrics.request_failed(problem.error_type)
        return web.Response(
            status=problem.status,
            body=problem.body(),
            content_type=problem.content_type.split(";")[0],
        )

    # --- generation ------------------------------------------------------------------------

    async def plan(self, prompt: str, v: Validated) -> Plan:
        """Tokenize when needed, then TGI's length checks and grammar checks, in TGI's order.

        Prompts that are short enough by a cheap bound are not tokenized here (the engine
        reports their length when it finishes).
        """
        backend = self.backend
        limits = self.limits
        engine_prompt: str | tuple[int, ...] = prompt
        input_length: int | None = None
        if v.truncate is not None:
            ids = [token_id for token_id, _ in await backend.tokenize(prompt)]
            engine_prompt = tuple(ids[-v.truncate :])
            input_length = len(engine_prompt)
        elif v.max_new_tokens is None:
            input_length = await backend.count_tokens(prompt)
        else:
            bound = backend.token_upper_bound(prompt)
            if (
                bound + v.max_new_tokens > limits.max_total_tokens
                or bound > limits.max_input_tokens
            ):
                input_length = await backend.count_tokens(prompt)
        max_new_tokens = v.max_new_tokens
        if input_length is not None:
            max_new_tokens = resolve_lengths(input_length, v.max_new_tokens, limits)
        assert max_new_tokens is not None
        # llguidance compiles the grammar to check it: up to a second for a huge one, off the loop.
        grammar = (
            None if v.grammar is None else await asyncio.to_thread(to_engine_grammar, v.grammar)
        )
        return Plan(
            prompt=engine_prompt,
            max_new_tokens=max_new_tokens,
            sampling=v.sampling,
            stop=v.stop,
            top_n_tokens=v.top_n_tokens,
            grammar=grammar,
            input_length=input_length,
        )

    def timing_headers(
        self, gen: Generation, started: float, validated_at: float, characters: int
    ) -> dict[str, str]:
        """TGI's ``x-*`` response headers. ``x-inference-time`` includes any wait for a slot."""
        now = time.monotonic()
        inference = gen.ended_at - gen.started_at
        generated = max(len(gen.tokens), 1)
        return {
            "x-compute-type": self.compute_type,
            "x-compute-time": f"{now - started:.6f}",
            "x-compute-characters": str(characters),
            "x-total-time": str(int((now - started) * 1000)),
            "x-validation-time": str(int((validated_at - started) * 1000)),
            "x-queue-time": str(int(max(gen.started_at - validated_at, 0.0) * 1000)),
            "x-inference-time": str(int(inference * 1000)),
            "x-time-per-token": str(int(inference * 1000 / generated)),
            "x-prompt-tokens": str(gen.input_length),
            "x-generated-tokens": str(len(gen.tokens)),
        }

    def record(self, gens: list[Generation], started: float) -> None:
        """Count finished generations in the metrics."""
        duration = time.monotonic() - started
        for gen in gens:
            self.metrics.request_succeeded(
                duration_s=duration, input_tokens=gen.input_length, generated_tokens=len(gen.tokens)
            )


def answer_and_close(request: web.Request, problem: Problem) -> None:
    """Write ``problem`` as a whole HTTP/1.1 response straight to the socket, then close it.

    The handler's own response then meets a closing transport, which aiohttp drops quietly.
    """
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    body = problem.body()
    head = (
        f"HTTP/1.1 {problem.status} {HTTPStatus(problem.status).phrase}\r\n"
        f"Content-Type: {problem.content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    transport.write(head.encode() + body)
    transport.close()
