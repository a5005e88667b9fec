"""The parallel runner: jobs on the async core, at most ``concurrency`` in flight.

Async jobs (programs with ``aforward``) run as coroutines on the event loop -- 32 in flight are
32 coroutines on one thread, sharing the LM's connection pool. Sync jobs (programs with only
``forward``, plain callables) run in a thread pool of ``concurrency`` workers, each started in a
copy of the caller's settings context (:func:`tgispy.utils.copy_context_runner`).

The sync face (:func:`run_interruptible`) turns Ctrl-C into a prompt cancellation of the run: the
jobs in flight are cancelled, the caller gets its partial results and then ``KeyboardInterrupt``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from tgispy._settings import copy_context_runner
from tgispy._sync import run_sync
from tgispy.primitives import Module

__all__ = ["WorkerPool", "async_entry", "run_interruptible", "run_pool", "sync_pool_job"]

T = TypeVar("T")


class _Stop(Exception):
    """Raised by a worker to end the run early (``on_result`` said stop)."""


async def run_pool(
    count: int,
    job: Callable[[int], Awaitable[T]],
    *,
    concurrency: int,
    on_result: Callable[[int, T], bool],
) -> bool:
    """Await ``job(i)`` for every ``i`` in ``range(count)``, at most ``concurrency`` at a time.

    ``on_result(i, value)`` runs on the loop after each job; when it returns ``False`` the jobs
    still in flight are cancelled and no new one starts. Returns whether every job ran.
    Cancelling the caller cancels the jobs in flight too.

    Example:
        >>> async def square(i):
        ...     return i * i
        >>> got = {}
        >>> asyncio.run(run_pool(3, square, concurrency=2, on_result=lambda i, v: got.update({i: v})
        ...                      or True))
        True
        >>> got
        {0: 0, 1: 1, 2: 4}
    """
    next_index = 0
    stopped = False

    async def worker() -> None:
        nonlocal next_index, stopped
        while next_index < count and not stopped:
            index = next_index
            next_index += 1
            value = await job(index)
            if not on_result(index, value):
                stopped = True
                raise _Stop

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(concurrency, count))):
                group.create_task(worker())
    except* _Stop:
        stopped = True
    return not stopped


class WorkerPool:
    """``size`` daemon threads running submitted calls.

    Unlike :class:`concurrent.futures.ThreadPoolExecutor`, whose threads the interpreter joins at
    exit, a Ctrl-C'd evaluation must not keep the process alive until the examples still running
    in threads (HTTP calls) finish: these threads are daemons, and :meth:`shutdown` never waits.
    """

    def __init__(self, size: int, name: str = "tgispy-eval") -> None:
        self._queue: queue.SimpleQueue[
            tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]] | None
        ] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((future, fn, args))
        return future

    def shutdown(self) -> None:
        """Let the threads end after their current call; queued calls never start."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)


def sync_pool_job(
    fn: Callable[[int], T], concurrency: int
) -> tuple[Callable[[int], Awaitable[T]], WorkerPool]:
    """Wrap a blocking ``fn(i)`` as an awaitable job run by ``concurrency`` worker threads.

    Each call runs in a fresh copy of the caller's context (settings). The caller shuts the
    returned pool down.
    """
    pool = WorkerPool(concurrency)
    run = copy_context_runner()

    def job(index: int) -> Awaitable[T]:
        return asyncio.wrap_future(pool.submit(run, fn, index))

    return job, pool


def async_entry(program: Any) -> Callable[..., Awaitable[Any]] | None:
    """The coroutine function to await for ``program``, or ``None`` when it is sync-only.

    A :class:`~tgispy.Module` is async when its most specific ``forward`` / ``aforward`` is an
    ``aforward`` (``Predict``, ``ChainOfThought``, or a user module that defines ``aforward``); a
    module that only defines ``forward`` runs in worker threads. Any other callable is async when
    calling it returns a coroutine (an ``async def`` function or ``__call__``).
    """
    if isinstance(program, Module):
        cls = type(program)
        forward_owner = _owner(cls, "forward")
        aforward_owner = _owner(cls, "aforward")
        if aforward_owner is None or aforward_owner is Module:
            return None
        if forward_owner is None or issubclass(aforward_owner, forward_owner):
            return program.acall
        return None
    if inspect.iscoroutinefunction(program):
        return program  # type: ignore[no-any-return]
    call = getattr(type(program), "__call__", None)  # noqa: B004 - the class's, not callable()
    if call is not None and inspect.iscoroutinefunction(call):
        return program  # type: ignore[no-any-return]
    return None


def _owner(cls: type, name: str) -> type | None:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    return None


def run_interruptible(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine from ``make()`` to completion from blocking code; Ctrl-C cancels it.

    In the main thread (with Python's default SIGINT handler in place) the first Ctrl-C cancels
    the coroutine -- which gets to clean up and report -- and then raises ``KeyboardInterrupt``
    here; a second Ctrl-C interrupts at once. Elsewhere this is :func:`tgispy._sync.run_sync`.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        return run_sync(make())

    state: dict[str, Any] = {}

    async def main() -> T:
        state["loop"] = asyncio.get_running_loop()
        state["task"] = asyncio.current_task()
        return await make()

    def on_sigint(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        task = state.get("task")
        if task is None:
            raise KeyboardInterrupt
        state["interrupted"] = True
        state["loop"].call_soon_threadsafe(task.cancel)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        return run_sync(main())
    except (asyncio.CancelledError, concurrent.futures.CancelledError):
        if state.get("interrupted"):
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
