"""What the instruction optimizers share: candidate programs scored concurrently, a progress bar
with the best score, the best program kept for Ctrl-C, the scripted-LM check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from tgispy._settings import current as current_settings
from tgispy.evaluate._evaluate import Evaluate
from tgispy.evaluate._runner import run_interruptible
from tgispy.primitives import Example

__all__ = ["BestSoFar", "Progress", "compile_interruptible", "gather_bounded", "score_program"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BestSoFar:
    """The best-scoring program seen so far (what Ctrl-C returns)."""

    def __init__(self) -> None:
        self.score: float | None = None
        self.program: Any = None

    def offer(self, score: float, program: Any) -> None:
        if self.score is None or score > self.score:
            self.score = score
            self.program = program


class Progress:
    """One tqdm bar per compile: candidate evaluations done, with the best score in the postfix."""

    def __init__(self, desc: str, best: BestSoFar) -> None:
        import tqdm

        self.best = best
        # disable=None: a bar in terminals only.
        self.bar = tqdm.tqdm(total=0, desc=desc, unit="candidate", disable=None)

    def expect(self, count: int) -> None:
        self.bar.total = (self.bar.total or 0) + count
        self.bar.refresh()

    def done(self) -> None:
        self.bar.update(1)
        if self.best.score is not None:
            self.bar.set_postfix_str(f"best={self.best.score}")

    def close(self) -> None:
        self.bar.close()


async def gather_bounded(
    factories: Sequence[Callable[[], Awaitable[T]]], limit: int | None
) -> list[T]:
    """Await every ``factory()`` with at most ``limit`` in flight; results in the given order.

    Cancelling the caller cancels the ones in flight.
    """
    if not factories:
        return []
    semaphore = asyncio.Semaphore(limit or len(factories))

    async def one(factory: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await factory()

    tasks = [asyncio.ensure_future(one(factory)) for factory in factories]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


async def score_program(
    program: Any,
    devset: Sequence[Example],
    metric: Callable[..., Any],
    eval_kwargs: dict[str, Any],
) -> float:
    """The program's Evaluate score (a percentage) on ``devset``.

    Each candidate gets its own :class:`Evaluate` (they run concurrently); their own progress
    bars and tables are off, the optimizer shows one bar for all candidates.
    """
    kwargs = {
        k: v
        for k, v in eval_kwargs.items()
        if k not in ("display_progress", "display_table", "devset", "metric")
    }
    evaluate = Evaluate(devset=devset, metric=metric, display_progress=False, **kwargs)
    score = await evaluate.acall(program)
    return float(score)


def scripted_lm(lm: Any = None) -> bool:
    """Whether the LM answers from a script in call order (a ``DummyLM`` with a list): such runs
    stay sequential so that answers keep their order."""
    lms = [lm, current_settings().lm]
    return any(isinstance(getattr(x, "answers", None), list) for x in lms if x is not None)


def compile_interruptible(
    make: Callable[[], Coroutine[Any, Any, T]], best: BestSoFar, name: str
) -> T:
    """Run an async compile from blocking code; Ctrl-C returns the best program so far.

    Without any scored candidate yet, the ``KeyboardInterrupt`` propagates.
    """
    try:
        return run_interruptible(make)
    except KeyboardInterrupt:
        if best.program is None:
            raise
        logger.warning(
            "%s interrupted: returning the best program so far (score %s); the search did not "
            "finish",
            name,
            best.score,
        )
        return best.program  # type: ignore[no-any-return]
