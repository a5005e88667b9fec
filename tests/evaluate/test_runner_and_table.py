"""The runner's pieces (which programs are async, the pool) and the table renderers."""

from __future__ import annotations

import asyncio
from typing import Any

import tgispy as dspy
from tgispy.evaluate._runner import WorkerPool, async_entry, run_pool
from tgispy.evaluate._table import render_html, render_text, truncate_cell


class OnlyForward(dspy.Module):
    def forward(self, question: str) -> Any:
        return question


class OnlyAforward(dspy.Module):
    async def aforward(self, question: str) -> Any:
        return question


class CotWithSyncForward(dspy.ChainOfThought):
    def forward(self, **kwargs: Any) -> Any:  # overrides the sync path only
        return "custom"


class AsyncCallable:
    async def __call__(self, question: str) -> Any:
        return question


async def async_function(question: str) -> Any:
    return question


def test_async_entry_picks_the_most_specific_face() -> None:
    assert async_entry(OnlyForward()) is None
    only_aforward = OnlyAforward()
    assert async_entry(only_aforward) == only_aforward.acall
    assert async_entry(dspy.ChainOfThought("question -> answer")) is not None
    assert async_entry(dspy.Predict("question -> answer")) is not None
    assert async_entry(CotWithSyncForward("question -> answer")) is None
    assert async_entry(async_function) is async_function
    callable_object = AsyncCallable()
    assert async_entry(callable_object) is callable_object
    assert async_entry(lambda question: question) is None


def test_run_pool_stops_when_told_and_starts_nothing_more() -> None:
    started: list[int] = []

    async def job(index: int) -> int:
        started.append(index)
        await asyncio.sleep(0)
        return index

    seen: list[int] = []

    def on_result(index: int, value: int) -> bool:
        seen.append(value)
        return value < 3

    assert asyncio.run(run_pool(100, job, concurrency=2, on_result=on_result)) is False
    assert 3 in seen and max(started) <= 5


def test_worker_pool_runs_calls_and_cancels_queued_ones() -> None:
    pool = WorkerPool(1)
    first = pool.submit(lambda: 1)
    assert first.result(5) == 1
    failing = pool.submit(lambda: 1 / 0)
    assert isinstance(failing.exception(5), ZeroDivisionError)
    pool.shutdown()


def test_truncation_and_renderers() -> None:
    assert truncate_cell("a " * 30).endswith("...")
    assert truncate_cell("x" * 100, max_chars=10) == "xxxxxxx..."
    records = [{"question": "<b>2+2</b>?", "answer": "4", "em": 1.0}, {"question": "q", "em": 0}]
    text = render_text(records, "em").splitlines()
    assert text[1].split() == ["0", "<b>2+2</b>?", "4", "✔️", "[1.0]"]
    assert text[2].split() == ["1", "q", "0"]
    page = render_html(records, "em")
    assert "&lt;b&gt;2+2&lt;/b&gt;?" in page and "<b>" not in page
    assert page.count("<tr>") == 3
