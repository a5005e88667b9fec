"""The one request pipeline every generation route runs: parse, permits, validate, plan, generate
or stream, and a dropped client.

The route's :data:`~tgispy.server._codecs.Parser` reads the request into a codec; from there the
steps are the same for TGI's and OpenAI's routes, in TGI's order:

1. take the permits (``max_concurrent_requests``: 429 when they are all taken);
2. validate each prompt's parameters and plan it (tokenize if needed, lengths, grammar);
3. generate (``best_of`` sequences, or a batch of prompts, at once) and answer, or stream each
   step as the codec's event, a problem in the middle as the codec's error event.

Errors before a stream starts are :class:`~tgispy.server._problems.Problem` exceptions that the
problem middleware answers; a client that goes away mid-stream cancels the generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Final

from aiohttp import web

from tgispy.server._codecs import Codec, Parser
from tgispy.server._front import Front
from tgispy.server._generation import (
    Generation,
    Plan,
    Step,
    generate_all,
    generate_best_of,
    generate_steps,
)
from tgispy.server._problems import Problem
from tgispy.server._types import Backend
from tgispy.server._validation import Validated, validate

__all__ = ["merge_steps", "run"]

_SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


async def run(front: Front, request: web.Request, parse: Parser) -> web.StreamResponse:
    """Serve one generation request with the route's parser."""
    started = time.monotonic()
    codec = await parse(front, request)
    if codec.stream:
        return await _stream(front, request, codec, started)
    with front.permits(codec.permits):
        validated, plans = await _plan(front, codec)
        validated_at = time.monotonic()
        gens = await _generate(front.backend, plans, codec.best_of)
    return codec.answer(front, gens, validated, started, validated_at)


async def _plan(front: Front, codec: Codec) -> tuple[Validated | None, list[Plan]]:
    """TGI's validation then the plan of each prompt; the first prompt's validated values
    (``None`` for an empty ``/v1/completions`` batch, answered with no choices)."""
    plans: list[Plan] = []
    first: Validated | None = None
    for prompt in codec.prompts:
        validated = validate(prompt, codec.params, front.limits)
        first = first or validated
        plans.append(await front.plan(prompt, validated))
    return first, plans


async def _generate(backend: Backend, plans: list[Plan], best_of: int) -> list[Generation]:
    if len(plans) == 1:
        return await generate_best_of(backend, plans[0], best_of)
    return await generate_all(backend, plans)


async def _stream(
    front: Front, request: web.Request, codec: Codec, started: float
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={**_SSE_HEADERS, **codec.stream_headers(front)})
    await resp.prepare(request)
    try:
        codec.stream_checks()
        with front.permits(codec.permits):
            validated, plans = await _plan(front, codec)
            async with contextlib.aclosing(merge_steps(front.backend, plans)) as steps:
                async for index, step in steps:
                    await resp.write(codec.event(index, step, validated))
                    if step.final is not None:
                        front.record([step.final], started)
    except Problem as problem:
        front.metrics.request_failed(problem.error_type)
        await resp.write(codec.stream_error(problem))
    except ConnectionResetError:
        # The client went away (or the sim dropped it); leaving the loop cancelled the engine.
        front.metrics.request_failed("dropped")
        return resp
    end = codec.stream_end()
    if end:
        await resp.write(end)
    await resp.write_eof()
    return resp


async def merge_steps(
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
