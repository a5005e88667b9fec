"""The HTTP front: TGI's routes over any :class:`~tgispy.server._types.Backend`, on aiohttp.web.

Each handler is a thin shell: read the body, run the pure parsing/validation, drive the
generation core, format with :mod:`tgispy.server._protocol`. Errors are
:class:`~tgispy.server._problems.Problem` values turned into TGI's answers in one place each
(:meth:`_Front.error_response` for JSON routes, SSE error events for streams).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web

from tgispy.server import _problems as problems
from tgispy.server import _protocol as proto
from tgispy.server._config import VERSION, ServerConfig
from tgispy.server._generation import (
    Generation,
    Plan,
    Step,
    generate_all,
    generate_best_of,
    generate_steps,
)
from tgispy.server._grammar import to_engine_grammar
from tgispy.server._guard import ConnectionGuard, default_max_connections
from tgispy.server._metrics import Metrics
from tgispy.server._problems import Problem
from tgispy.server._types import Backend, Fault
from tgispy.server._validation import (
    GenerateParams,
    GenerateRequest,
    Limits,
    Validated,
    check_best_of,
    check_stream_params,
    decode_body,
    parse_chat,
    parse_completion,
    parse_generate,
    resolve_lengths,
    validate,
    with_parameters,
)

__all__ = ["FRONT_KEY", "GUARD_KEY", "create_app", "make_backend"]

logger = logging.getLogger(__name__)

_SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_JSON: Final = "application/json"
#: bodies larger than this are decoded (and /tokenize answered) on a worker thread
_OFF_LOOP_BYTES: Final = 65_536
# Status faults that TGI itself produces: on streaming routes they arrive as SSE error events.
_TGI_STATUSES: Final = frozenset({422, 424, 429, 500})


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


def _answer_and_close(request: web.Request, problem: Problem) -> None:
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


def _abort(request: web.Request) -> web.Response:
    """Drop the connection: the client sees a disconnect, not a response."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()


class _Front:
    """State and handlers of one server (one backend, one set of limits, one metrics set)."""

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
        self.tokenize_slots = asyncio.Semaphore(config.tokenize_workers)
        self.tokenize_waiting = 0
        self.load_error: BaseException | None = None
        self.info_body = proto.dumps(
            {
                "model_id": self.model_id,
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": config.max_concurrent_requests,
                "max_best_of": config.max_best_of,
                "max_stop_sequences": config.max_stop_sequences,
                "max_input_tokens": config.limits_input,
                "max_total_tokens": config.limits_total,
                "validation_workers": config.tokenize_workers,
                "max_client_batch_size": config.max_client_batch_size,
                "router": "text-generation-router",
                "version": VERSION,
                "sha": None,
                "docker_label": None,
            }
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
        # Load in the background so that /health answers 503 while the model loads.
        self.load_task = asyncio.create_task(self._load(), name="tgispy-load-model")

    async def _load(self) -> None:
        try:
            await self.backend.start()
        except BaseException as exc:
            self.load_error = exc
            logger.error("the model failed to load: %s", exc)
            raise

    async def on_cleanup(self, app: web.Application) -> None:
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

    # --- shared helpers ------------------------------------------------------------------

    def acquire(self, n: int) -> None:
        """Take ``n`` permits of ``max_concurrent_requests`` without waiting (TGI's try_acquire)."""
        if self.in_flight + n > self.config.max_concurrent_requests:
            raise problems.overloaded()
        self.in_flight += n

    def release(self, n: int) -> None:
        self.in_flight -= n

    async def read_raw(self, request: web.Request, limit: int) -> bytes:
        """The JSON body's bytes, with axum's rejections for media type and size (> ``limit``)."""
        content_type = request.content_type
        if content_type != _JSON and not content_type.endswith("+json"):
            raise problems.unsupported_media_type()
        length = request.content_length
        if length is not None and length > limit:
            raise problems.payload_too_large()
        chunks: list[bytes] = []
        size = 0
        try:
            # A body that trickles in would hold its connection (and memory) for ever.
            async with asyncio.timeout(self.config.body_timeout_s):
                while chunk := await request.content.readany():
                    size += len(chunk)
                    if size > limit:
                        raise problems.payload_too_large()
                    chunks.append(chunk)
        except TimeoutError as exc:
            problem = problems.body_timeout(self.config.body_timeout_s)
            # Answer and close now: aiohttp would otherwise linger, reading the rest of the body.
            _answer_and_close(request, problem)
            raise problem from exc
        return b"".join(chunks)

    async def read_json(self, request: web.Request) -> Any:
        """The body as JSON, with axum's rejections for size, media type and syntax."""
        raw = await self.read_raw(request, self.config.payload_limit)
        if len(raw) > _OFF_LOOP_BYTES:
            return await asyncio.to_thread(decode_body, raw)
        return decode_body(raw)

    def error_response(self, problem: Problem) -> web.Response:
        self.metrics.request_failed(problem.error_type)
        response = web.Response(
            status=problem.status,
            body=problem.body(),
            content_type=problem.content_type.split(";")[0],
        )
        return response

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

    async def prepare_generation(
        self, inputs: str, params: GenerateParams
    ) -> tuple[Validated, Plan]:
        await self.wait_ready()
        validated = validate(inputs, params, self.limits)
        return validated, await self.plan(inputs, validated)

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
        duration = time.monotonic() - started
        for gen in gens:
            self.metrics.request_succeeded(
                duration_s=duration, input_tokens=gen.input_length, generated_tokens=len(gen.tokens)
            )

    async def pre_fault(
        self, request: web.Request, fault: Fault, *, stream: bool, openai: bool
    ) -> web.StreamResponse | None:
        """Apply a simulated fault; ``None`` means "go on" (after a hang, or a later drop)."""
        if fault.kind == "hang":
            await asyncio.sleep(fault.hang_s)
            return None
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
            return self.error_response(problem)
        if fault.kind == "malformed":
            if stream:
                resp = web.StreamResponse(headers=_SSE_HEADERS)
                await resp.prepare(request)
                await resp.write(b'data: {"index":1,"token":{"id":\n\n')
                await resp.write_eof()
                return resp
            return web.Response(body=b'{"generated_text": "simulated malformed', content_type=_JSON)
        if fault.kind == "truncated":
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
        # drop: on streams it happens mid-way (the caller handles it); otherwise right away.
        return None if stream else _abort(request)

    # --- TGI routes ------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        if self.backend.ready:
            return web.Response()
        return web.Response(
            status=503, body=b'{"error":"unhealthy","error_type":"healthcheck"}', content_type=_JSON
        )

    async def info(self, request: web.Request) -> web.Response:
        return web.Response(body=self.info_body, content_type=_JSON)

    async def models(self, request: web.Request) -> web.Response:
        return web.Response(body=self.models_body, content_type=_JSON)

    async def metrics_route(self, request: web.Request) -> web.Response:
        text = self.metrics.render(in_flight=self.in_flight, ready=self.backend.ready)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

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

    async def tokenize(self, request: web.Request) -> web.Response:
        try:
            raw = await self.read_raw(request, self.config.tokenize_bytes)
            # Large bodies are decoded, tokenized and answered on worker threads, a bounded
            # number at a time: a 2 MB prompt held the event loop (and /health) for seconds.
            async with self.tokenize_slot():
                big = len(raw) > _OFF_LOOP_BYTES
                body = await asyncio.to_thread(decode_body, raw) if big else decode_body(raw)
                req = parse_generate(body)
                await self.wait_ready()
                pieces = await self.backend.tokenize(req.inputs)
                if big:
                    # The worker takes the only reference: the tokens die off the loop too.
                    answer = await asyncio.to_thread(_answer_and_free, req.inputs, [pieces])
                    del pieces
                else:
                    answer = proto.tokenize_body(req.inputs, pieces)
        except Problem as problem:
            return self.error_response(problem)
        return web.Response(body=answer, content_type=_JSON)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            req = parse_generate(await self.read_json(request))
        except Problem as problem:
            return self.error_response(problem)
        return await self._generate(request, req, started, compat=False)

    async def generate_stream(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            req = parse_generate(await self.read_json(request))
        except Problem as problem:
            return self.error_response(problem)
        return await self._stream(request, req, started)

    async def compat(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            req = parse_generate(await self.read_json(request), compat=True)
        except Problem as problem:
            return self.error_response(problem)
        if req.parameters.return_full_text is None:
            # TGI's default for `/`: the model's pipeline tag is text-generation.
            req = with_parameters(req, return_full_text=True)
        if req.stream:
            return await self._stream(request, req, started)
        return await self._generate(request, req, started, compat=True)

    async def _generate(
        self, request: web.Request, req: GenerateRequest, started: float, *, compat: bool
    ) -> web.StreamResponse:
        self.metrics.request_started()
        params = req.parameters
        permits = 0
        try:
            n = check_best_of(params, self.limits)
            fault = self.backend.pick_fault()
            if fault is not None:
                faulted = await self.pre_fault(request, fault, stream=False, openai=False)
                if faulted is not None:
                    return faulted
            self.acquire(n)
            permits = n
            validated, plan = await self.prepare_generation(req.inputs, params)
            validated_at = time.monotonic()
            gens = await generate_best_of(self.backend, plan, n)
        except Problem as problem:
            return self.error_response(problem)
        finally:
            self.release(permits)
        prefix = req.inputs if params.return_full_text else ""
        body = proto.dumps(
            proto.generate_response(
                gens, details=validated.details, top_n=validated.top_n_tokens, prefix=prefix
            )
        )
        if compat:
            body = b"[" + body + b"]"
        self.record(gens[:1], started)
        headers = self.timing_headers(gens[0], started, validated_at, len(req.inputs))
        return web.Response(body=body, content_type=_JSON, headers=headers)

    async def _stream(
        self, request: web.Request, req: GenerateRequest, started: float
    ) -> web.StreamResponse:
        self.metrics.request_started()
        params = req.parameters
        fault = self.backend.pick_fault()
        if fault is not None:
            faulted = await self.pre_fault(request, fault, stream=True, openai=False)
            if faulted is not None:
                return faulted
        drop = fault is not None and fault.kind == "drop"
        resp = web.StreamResponse(
            headers={
                **_SSE_HEADERS,
                "x-compute-type": self.compute_type,
                "x-compute-characters": str(len(req.inputs)),
            }
        )
        await resp.prepare(request)
        permits = 0
        try:
            check_stream_params(params)
            self.acquire(1)
            permits = 1
            validated, plan = await self.prepare_generation(req.inputs, params)
            prefix = req.inputs if params.return_full_text else ""
            drop_after = max(1, plan.max_new_tokens // 2)
            async with contextlib.aclosing(generate_steps(self.backend, plan)) as steps:
                async for step in steps:
                    if drop and (step.final is not None or step.index >= drop_after):
                        return _abort(request)
                    await resp.write(
                        proto.stream_event(
                            step,
                            details=validated.details,
                            top_n=validated.top_n_tokens,
                            prefix=prefix,
                        )
                    )
                    if step.final is not None:
                        self.record([step.final], started)
        except Problem as problem:
            self.metrics.request_failed(problem.error_type)
            await resp.write(proto.sse(problem.body()))
        except ConnectionResetError:
            # The client went away; leaving the loop above already cancelled the generation.
            self.metrics.request_failed("dropped")
            return resp
        finally:
            self.release(permits)
        await resp.write_eof()
        return resp

    # --- OpenAI-compatible routes -------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        self.metrics.request_started()
        try:
            creq = parse_chat(await self.read_json(request))
            if creq.tools:
                raise problems.tool_error(
                    "tools are not supported by tgispy serve; describe the expected JSON with "
                    "response_format instead"
                )
            await self.wait_ready()
            prompt = await self.backend.apply_chat_template(creq.messages)
        except Problem as problem:
            return self.error_response(problem)
        model = creq.model or self.model_id
        created = int(time.time())
        params = creq.parameters
        fault = self.backend.pick_fault()
        if fault is not None:
            faulted = await self.pre_fault(request, fault, stream=creq.stream, openai=True)
            if faulted is not None:
                return faulted
        if not creq.stream:
            permits = 0
            try:
                self.acquire(1)
                permits = 1
                validated = validate(prompt, params, self.limits)
                plan = await self.plan(prompt, validated)
                gens = await generate_best_of(self.backend, plan, 1)
            except Problem as problem:
                return self.error_response(problem)
            finally:
                self.release(permits)
            self.record(gens, started)
            body = proto.chat_completion(
                gens[0],
                model=model,
                fingerprint=self.fingerprint,
                created=created,
                logprobs=creq.logprobs,
            )
            return web.Response(body=proto.dumps(body), content_type=_JSON)
        drop = fault is not None and fault.kind == "drop"
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        await resp.prepare(request)
        permits = 0
        try:
            self.acquire(1)
            permits = 1
            validated = validate(prompt, params, self.limits)
            plan = await self.plan(prompt, validated)
            drop_after = max(1, plan.max_new_tokens // 2)
            async with contextlib.aclosing(generate_steps(self.backend, plan)) as steps:
                async for step in steps:
                    if drop and (step.final is not None or step.index >= drop_after):
                        return _abort(request)
                    await resp.write(
                        proto.chat_chunk(
                            step,
                            model=model,
                            fingerprint=self.fingerprint,
                            created=created,
                            logprobs=creq.logprobs,
                        )
                    )
                    if step.final is not None:
                        self.record([step.final], started)
                        if creq.include_usage:
                            await resp.write(
                                proto.chat_usage_chunk(
                                    step.final,
                                    model=model,
                                    fingerprint=self.fingerprint,
                                    created=created,
                                )
                            )
        except Problem as problem:
            self.metrics.request_failed(problem.error_type)
            await resp.write(proto.openai_stream_error(problem))
        except ConnectionResetError:
            self.metrics.request_failed("dropped")
            return resp
        finally:
            self.release(permits)
        await resp.write(proto.DONE)
        await resp.write_eof()
        return resp

    async def completions(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        self.metrics.request_started()
        try:
            creq = parse_completion(await self.read_json(request))
            if creq.suffix:
                raise Problem(
                    422,
                    "Suffix is not supported and can be achieved by preprocessing the prompt.",
                    "suffix not supported",
                )
            if len(creq.prompts) > self.limits.max_client_batch_size:
                raise Problem(
                    422,
                    "Number of prompts exceeds the maximum allowed batch size of "
                    f"{self.limits.max_client_batch_size}",
                    "batch size exceeded",
                )
            await self.wait_ready()
        except Problem as problem:
            return self.error_response(problem)
        model = creq.model or self.model_id
        created = int(time.time())
        fault = self.backend.pick_fault()
        if fault is not None:
            faulted = await self.pre_fault(request, fault, stream=creq.stream, openai=True)
            if faulted is not None:
                return faulted
        n = len(creq.prompts)
        if not creq.stream:
            permits = 0
            try:
                self.acquire(n)
                permits = n
                plans = []
                for prompt in creq.prompts:
                    validated = validate(prompt, creq.parameters, self.limits)
                    plans.append(await self.plan(prompt, validated))
                gens = await generate_all(self.backend, plans)
            except Problem as problem:
                return self.error_response(problem)
            finally:
                self.release(permits)
            self.record(gens, started)
            body = proto.completion(
                gens, model=model, fingerprint=self.fingerprint, created=created
            )
            return web.Response(body=proto.dumps(body), content_type=_JSON)
        drop = fault is not None and fault.kind == "drop"
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        await resp.prepare(request)
        permits = 0
        try:
            self.acquire(n)
            permits = n
            plans = []
            for prompt in creq.prompts:
                validated = validate(prompt, creq.parameters, self.limits)
                plans.append(await self.plan(prompt, validated))
            emitted = 0
            drop_after = max(1, sum(p.max_new_tokens for p in plans) // 2)
            async for index, step in _merge_steps(self.backend, plans):
                emitted += 1
                if drop and emitted >= drop_after:
                    return _abort(request)
                await resp.write(
                    proto.completion_chunk(
                        index, step, model=model, fingerprint=self.fingerprint, created=created
                    )
                )
                if step.final is not None:
                    self.record([step.final], started)
        except Problem as problem:
            self.metrics.request_failed(problem.error_type)
            await resp.write(proto.openai_stream_error(problem))
        except ConnectionResetError:
            self.metrics.request_failed("dropped")
            return resp
        finally:
            self.release(permits)
        await resp.write(proto.DONE)
        await resp.write_eof()
        return resp


async def _merge_steps(
    backend: Backend, plans: list[Plan]
) -> AsyncGenerator[tuple[int, Step], None]:
    """Run several sequences at once and yield ``(prompt index, step)`` as steps arrive."""
    if len(plans) == 1:
        async with contextlib.aclosing(generate_steps(backend, plans[0])) as steps:
            async for step in steps:
                yield 0, step
        return
    queue: asyncio.Queue[tuple[int, Step] | BaseException | None] = asyncio.Queue()

    async def pump(index: int, plan: Plan) -> None:
        try:
            async with contextlib.aclosing(generate_steps(backend, plan)) as steps:
                async for step in steps:
                    queue.put_nowait((index, step))
        except BaseException as exc:
            queue.put_nowait(exc)
            raise
        finally:
            queue.put_nowait(None)

    tasks = [asyncio.create_task(pump(i, plan)) for i, plan in enumerate(plans)]
    running = len(tasks)
    try:
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


FRONT_KEY: Final = web.AppKey("tgispy_front", _Front)
#: the app's connection guard (it acts on connections accepted by a :class:`GuardedSite`)
GUARD_KEY: Final = web.AppKey("tgispy_guard", ConnectionGuard)


def create_app(config: ServerConfig, backend: Backend | None = None) -> web.Application:
    """Build the aiohttp application serving TGI's protocol over ``backend``.

    The backend (by default the one ``config.backend`` names) is started when the app starts,
    in the background: ``/health`` answers 503 until it is ready, and generation requests wait
    for it. Use it in-process with aiohttp's test server or ``AppRunner``; :func:`serve` runs it.

    Args:
        config: limits and backend settings.
        backend: an engine to serve instead of the one ``config`` names (tests, custom engines).

    Example:
        >>> from tgispy.server import ServerConfig, create_app
        >>> app = create_app(ServerConfig(backend="sim"))
        >>> sorted(r.resource.canonical for r in app.router.routes())[:3]
        ['/', '/generate', '/generate_stream']
    """
    front = _Front(config, backend if backend is not None else make_backend(config))
    guard = ConnectionGuard(
        max_connections=config.max_connections or default_max_connections(),
        header_timeout_s=config.header_timeout_s,
        keepalive_timeout_s=config.keepalive_timeout_s,
    )
    app = web.Application(client_max_size=config.payload_limit, middlewares=[guard.middleware])
    app[FRONT_KEY] = front
    app[GUARD_KEY] = guard
    app.on_startup.append(front.on_startup)
    app.on_cleanup.append(front.on_cleanup)
    routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
        ("POST", "/", front.compat),
        ("POST", "/generate", front.generate),
        ("POST", "/generate_stream", front.generate_stream),
        ("POST", "/v1/chat/completions", front.chat),
        ("POST", "/v1/completions", front.completions),
        ("POST", "/tokenize", front.tokenize),
        ("GET", "/health", front.health),
        ("GET", "/info", front.info),
        ("GET", "/metrics", front.metrics_route),
        ("GET", "/v1/models", front.models),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app
