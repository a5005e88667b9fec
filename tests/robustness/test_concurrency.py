"""No cross-talk under concurrency: 64 threads and 256 asyncio tasks, each with its own LM.

Every worker enters ``tgispy.context(lm=<its own LM>)`` and runs programs through it, at the same
time as all the others. Each answer must come from the worker's own LM, each LM's history must
hold only that worker's prompts, and a shared cache must never hand one LM's answer to another.

The first pair of tests uses in-process LMs (``DummyLM``); the second uses real ``HFClientTGI``
clients over HTTP to a local scripted TGI server, sharing one memory + disk cache.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tgispy
from tgispy._settings import settings
from tgispy.cache import DiskCache, LMCache, MemoryCache
from tgispy.lm._tgi import HFClientTGI
from tgispy.testing import Recorded, Reply, ScriptedTGI
from tgispy.utils.dummies import DummyLM

THREADS = 64
TASKS = 256
ROUNDS = 4


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(i)`` in ``count`` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(index)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,), name=f"w{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if failures:
        raise failures[0]


def _own_dummy(tag: str) -> DummyLM:
    # A dict answer: the value of the first key found in the prompt ("" is in every prompt).
    return DummyLM({"": f"answer of {tag}"})


def _check_history(lm: Any, tag: str, expected: int) -> None:
    prompts = [entry["prompt"] for entry in lm.history]
    assert len(prompts) == expected, (tag, len(prompts))
    assert all(f"[{tag}]" in p for p in prompts), [p for p in prompts if f"[{tag}]" not in p][:2]


# --- settings / context / history with in-process LMs ----------------------------------------


@pytest.fixture
def global_lm() -> Iterator[DummyLM]:
    """A process-wide LM that no worker may see; the previous one is restored afterwards."""
    previous = settings.lm
    lm = _own_dummy("global")
    tgispy.configure(lm=lm)
    yield lm
    tgispy.configure(lm=previous)


def test_threads_each_see_only_their_own_lm(global_lm: DummyLM) -> None:
    lms = {i: _own_dummy(f"t{i}") for i in range(THREADS)}
    predict = tgispy.Predict("question -> answer")

    def work(i: int) -> None:
        tag, lm = f"t{i}", lms[i]
        with tgispy.context(lm=lm, trace=[]):
            for k in range(ROUNDS):
                assert settings.lm is lm
                prediction = predict(question=f"[{tag}] question {k}")
                assert prediction.answer == f"answer of {tag}"
                if k % 2 == 0:
                    # a nested context for one call, then back to this worker's own LM
                    other = _own_dummy(f"{tag}-nested")
                    with tgispy.context(lm=other):
                        assert lm(f"[{tag}] nested {k}") == [f"answer of {tag}"]
                        assert settings.lm is other
                    assert settings.lm is lm
                assert lm(f"[{tag}] direct {k}") == [f"answer of {tag}"]
            trace = settings.trace
            assert trace is not None and len(trace) == ROUNDS  # this worker's predictions only
        assert settings.lm is global_lm

    run_threads(THREADS, work)
    for i, lm in lms.items():
        # per round a prediction and a direct call; every other round a nested call
        _check_history(lm, f"t{i}", ROUNDS * 2 + ROUNDS // 2)
    assert len(global_lm.history) == 0


async def test_tasks_each_see_only_their_own_lm() -> None:
    lms = {i: _own_dummy(f"a{i}") for i in range(TASKS)}
    predict = tgispy.Predict("question -> answer")
    start = asyncio.Event()

    async def work(i: int) -> None:
        tag, lm = f"a{i}", lms[i]
        await start.wait()
        with tgispy.context(lm=lm, trace=[]):
            for k in range(ROUNDS):
                await asyncio.sleep(random.random() / 1000)  # interleave the tasks
                prediction = await predict.acall(question=f"[{tag}] question {k}")
                assert prediction.answer == f"answer of {tag}"
                assert settings.lm is lm
                assert await lm.acall(f"[{tag}] direct {k}") == [f"answer of {tag}"]
                # configure() inside a context changes this block only
                tgispy.configure(rm=tag)
                assert settings.rm == tag
            trace = settings.trace
            assert trace is not None and len(trace) == ROUNDS

    tasks = [asyncio.create_task(work(i)) for i in range(TASKS)]
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    for i, lm in lms.items():
        _check_history(lm, f"a{i}", ROUNDS * 2)
    assert settings.rm is None  # no block's configure() leaked out


# --- real clients over HTTP, one shared cache ----------------------------------------------


def _answer(rec: Recorded) -> Reply:
    """Each client says who it is in a header; the reply names that client and echoes the prompt."""
    body = rec.json if isinstance(rec.json, dict) else {}
    return Reply.generate(f"{rec.headers.get('X-Worker')} says {body.get('inputs')}")


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedTGI]:
    with ScriptedTGI(_answer) as scripted:
        yield scripted


@pytest.fixture
def shared_cache(tmp_path: Path) -> LMCache:
    return LMCache(memory=MemoryCache(maxsize=50_000), disk=DiskCache(tmp_path / "cache"))


def _client(server: ScriptedTGI, tag: str, cache: LMCache) -> HFClientTGI:
    return HFClientTGI(
        f"model-{tag}",
        None,
        [server.url],
        {"headers": {"X-Worker": tag}, "timeout": 30},
        cache=cache,
    )


def _prompts(tag: str) -> list[str]:
    # Every worker asks the same shared question too: only the model in the cache key keeps the
    # workers' cached answers apart.
    return ["the shared question", *(f"[{tag}] question {k}" for k in range(ROUNDS - 1))]


def _expected(tag: str, prompt: str) -> list[str]:
    return [f"{tag} says {prompt}"]


def test_threads_with_real_clients_and_a_shared_cache(
    server: ScriptedTGI, shared_cache: LMCache
) -> None:
    clients = {i: _client(server, f"t{i}", shared_cache) for i in range(THREADS)}

    def work(i: int) -> None:
        tag, lm = f"t{i}", clients[i]
        with tgispy.context(lm=lm):
            for _ in range(2):  # the second round is answered from the cache
                for prompt in _prompts(tag):
                    assert settings.lm(prompt) == _expected(tag, prompt)

    before = len(server.requests)
    run_threads(THREADS, work)
    generated = [r for r in server.requests[before:] if r.path == "/generate"]
    assert len(generated) == THREADS * ROUNDS  # first round only: the second hit the cache
    for i, lm in clients.items():
        entries = list(lm.history)
        assert len(entries) == 2 * ROUNDS
        assert [e["cached"] for e in entries].count(True) == ROUNDS
        for entry in entries:
            assert entry["response"]["choices"][0]["text"].startswith(f"t{i} says ")


async def test_tasks_with_real_clients_and_a_shared_cache(
    server: ScriptedTGI, shared_cache: LMCache
) -> None:
    clients = {i: _client(server, f"a{i}", shared_cache) for i in range(TASKS)}
    predict = tgispy.Predict("question -> answer")

    async def work(i: int) -> None:
        tag, lm = f"a{i}", clients[i]
        with tgispy.context(lm=lm):
            for _ in range(2):
                for prompt in _prompts(tag):
                    await asyncio.sleep(random.random() / 1000)
                    assert await settings.lm.acall(prompt) == _expected(tag, prompt)
            # a program too: its prompt is the template's, its answer this worker's
            prediction = await predict.acall(question=f"[{tag}] via Predict")
            assert prediction.answer.startswith(f"{tag} says ")

    await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(TASKS))), timeout=90)
    for i, lm in clients.items():
        entries = list(lm.history)
        assert len(entries) == 2 * ROUNDS + 1
        assert all(e["response"]["choices"][0]["text"].startswith(f"a{i} says ") for e in entries)
        assert sum(e["cached"] for e in entries) == ROUNDS
