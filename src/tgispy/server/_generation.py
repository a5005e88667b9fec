"""The engine-independent generation core: stop sequences, token limits, best_of.

A backend yields raw tokens; :func:`generate_steps` turns them into TGI's view of a generation:
numbered steps, the last one carrying the final :class:`Generation` (finish reason, text with the
matched stop sequence kept at its end, as TGI does).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace

from tgispy.server import _problems as problems
from tgispy.server._types import (
    Backend,
    EngineEnd,
    EngineGrammar,
    EngineRequest,
    Sampling,
    TokenOut,
)

__all__ = [
    "Generation",
    "Plan",
    "Step",
    "StopMatcher",
    "generate",
    "generate_all",
    "generate_best_of",
    "generate_steps",
]

_SEED_RANGE = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Plan:
    """One validated generation: what to send to the engine and how to finish."""

    prompt: str | tuple[int, ...]
    max_new_tokens: int
    sampling: Sampling
    stop: tuple[str, ...] = ()
    top_n_tokens: int = 0
    grammar: EngineGrammar | None = None
    #: prompt tokens, when validation already counted them
    input_length: int | None = None


@dataclass(slots=True)
class Generation:
    """A finished sequence."""

    #: generated text (the stop sequence kept at its end), without the prompt
    text: str
    tokens: list[TokenOut]
    finish_reason: str
    seed: int | None
    input_length: int
    #: monotonic clock readings: engine started, first token, end
    started_at: float
    first_token_at: float
    ended_at: float

    @property
    def logprob_sum(self) -> float:
        """Sum of the tokens' logprobs (TGI ranks ``best_of`` sequences by it)."""
        return sum(t.logprob for t in self.tokens if t.logprob is not None)


@dataclass(frozen=True, slots=True)
class Step:
    """One generated token, numbered from 1; ``final`` is set on the last one."""

    index: int
    token: TokenOut
    #: what this token adds to the generated text ("" for special tokens; cut at a stop match)
    delta: str
    final: Generation | None = None


class StopMatcher:
    """Finds the first stop sequence in a growing text, looking only at the new tail.

    Example:
        >>> m = StopMatcher(("\\n\\n",))
        >>> m.find("Hello\\n", 6), m.find("Hello\\n\\nWorld", 7)
        (None, 7)
    """

    __slots__ = ("_longest", "_stops")

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self._stops), default=0)

    def __bool__(self) -> bool:
        return bool(self._stops)

    def find(self, text: str, added: int) -> int | None:
        """End offset of the earliest stop match that involves the last ``added`` characters."""
        if not self._stops or added <= 0:
            return None
        start = max(0, len(text) - added - self._longest + 1)
        best: int | None = None
        for stop in self._stops:
            pos = text.find(stop, start)
            if pos >= 0:
                end = pos + len(stop)
                if best is None or end < best:
                    best = end
        return best


def _seeded(sampling: Sampling, rng: random.Random | None = None) -> Sampling:
    """Give a sampling request without a seed a random one (TGI does; ``details.seed`` shows it)."""
    if not sampling.do_sample or sampling.seed is not None:
        return sampling
    draw = rng.randrange(_SEED_RANGE) if rng is not None else random.randrange(_SEED_RANGE)
    return replace(sampling, seed=draw)


async def generate_steps(backend: Backend, plan: Plan) -> AsyncGenerator[Step, None]:
    """Run one sequence on ``backend`` and yield its steps; the last step carries ``final``.

    Stop sequences, the token limit and EOS end the sequence; closing this iterator (or
    cancelling its consumer) cancels the engine's work.

    Raises:
        Problem: 424 when the engine fails, 500 when it stops without finishing.
    """
    sampling = _seeded(plan.sampling)
    request = EngineRequest(
        prompt=plan.prompt,
        max_new_tokens=plan.max_new_tokens,
        sampling=sampling,
        top_n_tokens=plan.top_n_tokens,
        grammar=plan.grammar,
    )
    matcher = StopMatcher(plan.stop)
    tokens: list[TokenOut] = []
    text = ""
    held: TokenOut | None = None
    started = time.monotonic()
    first_token_at = 0.0
    end: EngineEnd | None = None

    def finish(reason: str, input_length: int) -> Generation:
        return Generation(
            text=text,
            tokens=tokens,
            finish_reason=reason,
            seed=sampling.seed,
            input_length=input_length,
            started_at=started,
            first_token_at=first_token_at or time.monotonic(),
            ended_at=time.monotonic(),
        )

    async def input_length(end: EngineEnd | None) -> int:
        if end is not None:
            return end.prompt_tokens
        if plan.input_length is not None:
            return plan.input_length
        if isinstance(plan.prompt, tuple):
            return len(plan.prompt)
        return await backend.count_tokens(plan.prompt)

    engine = backend.stream(request)
    try:
        async for item in engine:
            if isinstance(item, EngineEnd):
                end = item
                break
            if not tokens:
                first_token_at = time.monotonic()
            if held is not None:
                # A special token that turned out not to be the last one.
                yield Step(len(tokens), held, "")
                held = None
            tokens.append(item)
            count = len(tokens)
            delta = "" if item.special else item.text
            if delta:
                text += delta
                if matcher:
                    cut = matcher.find(text, len(delta))
                    if cut is not None:
                        delta = delta[: len(delta) - (len(text) - cut)]
                        text = text[:cut]
                        length = await input_length(None)
                        yield Step(count, item, delta, finish("stop_sequence", length))
                        return
            if count >= plan.max_new_tokens:
                # The engine stops here too; its end report (which counts the prompt) follows.
                after = await anext(engine, None)
                length = await input_length(after if isinstance(after, EngineEnd) else None)
                yield Step(count, item, delta, finish("length", length))
                return
            if item.special:
                # EOS arrives as a special token just before the engine's end; hold it so it
                # can be reported as the final token.
                held = item
                continue
            yield Step(count, item, delta)
        if end is None:
            raise problems.incomplete()
        if held is None:
            # The engine ended without a closing token (e.g. a context limit): close with an
            # empty special token so that every stream has a final event.
            held = TokenOut(id=0, text="", logprob=None, special=True)
            tokens.append(held)
        yield Step(len(tokens), held, "", finish(end.reason, end.prompt_tokens))
    finally:
        await engine.aclose()


async def generate(backend: Backend, plan: Plan) -> Generation:
    """Run one sequence to completion and return it."""
    async for step in generate_steps(backend, plan):
        if step.final is not None:
            return step.final
    raise problems.incomplete()  # pragma: no cover - generate_steps always ends with a final


async def generate_all(backend: Backend, plans: list[Plan]) -> list[Generation]:
    """Generate several sequences at once; the first failure cancels the others and is raised."""
    if len(plans) == 1:
        return [await generate(backend, plans[0])]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(generate(backend, plan)) for plan in plans]
    except BaseExceptionGroup as errors:
        problem = _first_problem(errors)
        if problem is None:
            raise
        raise problem from errors
    return [task.result() for task in tasks]


def _first_problem(group: BaseExceptionGroup[BaseException]) -> problems.Problem | None:
    for exc in group.exceptions:
        if isinstance(exc, problems.Problem):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_problem(exc)
            if found is not None:
                return found
    return None


async def generate_best_of(backend: Backend, plan: Plan, n: int) -> list[Generation]:
    """Generate ``n`` sampled sequences concurrently, best first (highest logprob sum, as TGI).

    Each sequence gets its own random seed (``best_of > 1`` forbids a user seed).
    """
    results = await generate_all(backend, [plan] * n)
    if n == 1:
        return results
    best = max(range(n), key=lambda i: results[i].logprob_sum)
    return [results[best], *(r for i, r in enumerate(results) if i != best)]
