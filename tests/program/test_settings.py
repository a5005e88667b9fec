"""configure / context on a ContextVar: threads, asyncio tasks, and DSPy 2.4's stale-thread bug."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import tgispy as dspy
from tgispy._settings import Settings, configure, context, copy_context_runner, current
from tgispy.errors import ConfigError
from tgispy.utils.dummies import DummyLM

A, B, C = DummyLM(["a"]), DummyLM(["b"]), DummyLM(["c"])


def test_configure_sets_the_process_wide_default() -> None:
    configure(lm=A)
    assert dspy.settings.lm is A
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(dspy.settings.lm))
    thread.start()
    thread.join()
    assert seen == [A]


def test_context_is_scoped_and_nests() -> None:
    configure(lm=A)
    with context(lm=B):
        assert dspy.settings.lm is B
        with dspy.context(trace=[]):
            assert dspy.settings.lm is B and dspy.settings.trace == []
        assert dspy.settings.trace is None
    assert dspy.settings.lm is A


def test_context_is_restored_after_an_exception() -> None:
    configure(lm=A)
    with pytest.raises(RuntimeError), context(lm=B):
        raise RuntimeError("boom")
    assert dspy.settings.lm is A


def test_configure_inside_a_context_only_changes_that_block() -> None:
    configure(lm=A)
    with context(trace=[]):
        configure(lm=B)
        assert dspy.settings.lm is B
    assert dspy.settings.lm is A


def test_reused_pool_thread_does_not_keep_an_ended_context() -> None:
    # DSPy 2.4 gave a thread, the first time it saw it, a copy of the main thread's settings
    # stack: a pooled worker first used inside `with context(lm=A)` kept A forever.
    configure(lm=B)
    with ThreadPoolExecutor(max_workers=1) as pool:
        with context(lm=A):
            run = copy_context_runner()
            assert pool.submit(run, lambda: dspy.settings.lm).result() is A
            worker = pool.submit(threading.get_ident).result()
        assert pool.submit(threading.get_ident).result() == worker  # the same thread, reused
        assert pool.submit(lambda: dspy.settings.lm).result() is B
        assert pool.submit(copy_context_runner(), lambda: dspy.settings.lm).result() is B


def test_plain_threads_see_the_global_settings_not_a_callers_context() -> None:
    configure(lm=B)
    with context(lm=A), ThreadPoolExecutor(max_workers=2) as pool:
        assert pool.submit(lambda: dspy.settings.lm).result() is B


def test_copy_context_runner_workers_run_concurrently_in_private_copies() -> None:
    barrier = threading.Barrier(4)

    def work(i: int) -> tuple[Any, Any]:
        barrier.wait(timeout=10)  # all four inside the captured context at once
        before = dspy.settings.lm
        configure(lm=C if i % 2 else B)  # scoped to this worker's copy
        return before, dspy.settings.lm

    with context(lm=A):
        run = copy_context_runner()
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda i: run(work, i), range(4)))
        assert dspy.settings.lm is A
    assert results == [(A, B), (A, C), (A, B), (A, C)]


async def test_asyncio_tasks_keep_their_own_context() -> None:
    async def task(lm: Any, started: asyncio.Event, go: asyncio.Event) -> Any:
        with context(lm=lm):
            started.set()
            await go.wait()
            return dspy.settings.lm

    go = asyncio.Event()
    events = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(task(lm, ev, go)) for lm, ev in zip((A, B), events, strict=True)]
    for event in events:
        await event.wait()
    go.set()
    assert await asyncio.gather(*tasks) == [A, B]
    assert dspy.settings.lm is None


async def test_predict_on_the_sync_face_sees_the_callers_context() -> None:
    def in_thread() -> str:
        with context(lm=DummyLM(["from context"])):
            return str(dspy.Predict("question -> answer")(question="q").answer)

    assert await asyncio.to_thread(in_thread) == "from context"


def test_inherit_config_false_starts_from_defaults() -> None:
    configure(lm=A, trace=[])
    with context(inherit_config=False, trace=[]):
        assert dspy.settings.lm is None
    configure(inherit_config=False, lm=B)
    assert dspy.settings.trace is None and dspy.settings.lm is B


def test_unknown_and_dspy_keys() -> None:
    configure(rm="retriever", my_key=1)
    assert dspy.settings.rm == "retriever"
    assert dspy.settings.my_key == 1
    assert dspy.settings.experimental is False
    assert dspy.settings.config["my_key"] == 1 and dspy.settings.config["lm"] is None
    with pytest.raises(AttributeError, match="configure"):
        _ = dspy.settings.not_a_setting


def test_assignment_is_configure() -> None:
    dspy.settings.lm = A
    assert current().lm is A


def test_bad_values_are_rejected_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="HFClientTGI"):
        configure(lm="gpt-4")
    with pytest.raises(ConfigError, match="list"):
        configure(trace="yes")
    with pytest.raises(ConfigError, match="adapter"):
        configure(adapter=object())
    with pytest.raises(ConfigError, match="reserved"):
        configure(extra={})
    assert dspy.settings.lm is None


def test_settings_values_are_frozen() -> None:
    value = Settings(lm=A)
    with pytest.raises(AttributeError):
        value.lm = B  # type: ignore[misc]
    assert value.replace(lm=B).lm is B and value.lm is A
    assert value.get("release") == 0 and value.get("missing", 5) == 5


def test_module_api_is_reachable_through_the_settings_object() -> None:
    assert dspy.settings.Settings is Settings
    with dspy.settings.context(lm=A):
        assert dspy.settings.copy_context_runner()(lambda: dspy.settings.lm) is A
        assert dspy.settings.current().lm is A
    dspy.settings.configure(lm=B)
    assert dspy.configure is not None and dspy.settings.lm is B
