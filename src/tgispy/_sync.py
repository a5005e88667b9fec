"""The sync face: run coroutines of the async core to completion from blocking code.

Every blocking API of tgispy (``lm(prompt)``, ``HFClientTGI._generate``, ``Module.__call__``) is
a thin wrapper that hands the coroutine of its async twin to :func:`run_sync`. There is exactly one
code path for each operation; the sync face only waits for it.

Where it runs: a thread with no running event loop drives the coroutine on its own private loop
(``run_until_complete``: no thread hop, ~10 us of overhead); a thread that already runs a loop
(Jupyter, or sync code called from async code) hands it to one shared background loop thread
instead (~60 us). Replica state and caches are shared either way; connection pools are per loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_shutdown_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []
_local = threading.local()


def on_loop_shutdown(hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``await hook()`` on each private loop before it closes (e.g. to close sessions)."""
    _shutdown_hooks.append(hook)


def new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop for the sync face: asyncio's, or uvloop's with ``TGISPY_LOOP=uvloop``.

    The sync face runs one short coroutine per call, where uvloop's per-run cost outweighs its
    faster I/O (a ChainOfThought over DummyLM ran at 12k calls/s on uvloop against 27k on
    asyncio's loop), so it is opt-in here; async programs choose their own loop
    (``uvloop.run(main())``) and gain there.
    """
    if os.environ.get("TGISPY_LOOP", "").lower() == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class _ThreadLoop:
    """A thread's private loop; closed (hooks first) when the thread ends or at exit."""

    def __init__(self) -> None:
        self.loop = new_loop()

    def close(self) -> None:
        loop = self.loop
        if loop.is_closed() or loop.is_running():
            return
        try:
            for hook in _shutdown_hooks:
                loop.run_until_complete(hook())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def __del__(self) -> None:
        self.close()


_thread_loops: list[_ThreadLoop] = []


def _thread_loop() -> asyncio.AbstractEventLoop:
    holder: _ThreadLoop | None = getattr(_local, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _ThreadLoop()
        _local.holder = holder
        if threading.current_thread() is threading.main_thread():
            _thread_loops.append(holder)  # closed at exit; other threads' close with the thread
    return holder.loop


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


def background_loop() -> asyncio.AbstractEventLoop:
    """Return the process-wide loop that runs the sync face's coroutines, starting it if needed."""
    global _loop, _thread
    loop = _loop
    if loop is not None and not loop.is_closed():
        return loop
    with _lock:
        if _loop is None or _loop.is_closed():
            fresh = new_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=_run_loop, args=(fresh, ready), name="tgispy-loop", daemon=True
            )
            thread.start()
            ready.wait()
            _loop, _thread = fresh, thread
        return _loop


def in_background_loop() -> bool:
    """True when called from the sync face's own loop thread."""
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, blocking the calling thread.

    The caller's :mod:`contextvars` context (``tgispy.context(lm=...)``) travels with the coroutine.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _thread_loop().run_until_complete(coro)
    if in_background_loop():
        coro.close()
        raise RuntimeError(
            "a blocking tgispy call was made from inside tgispy's own event loop; "
            "use the async API (await lm.acall(...), await module.acall(...)) there instead"
        )
    loop = background_loop()
    ctx = contextvars.copy_context()
    future = asyncio.run_coroutine_threadsafe(_in_context(coro, ctx), loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate_sync(agen: AsyncGenerator[T, None]) -> Iterator[T]:
    """The sync face of an async generator: each item is fetched with :func:`run_sync`.

    Breaking out of the loop closes the async generator (and so its HTTP stream).
    """

    async def step() -> T:
        return await agen.__anext__()

    try:
        while True:
            try:
                yield run_sync(step())
            except StopAsyncIteration:
                return
    finally:
        run_sync(agen.aclose())


async def _in_context(coro: Coroutine[Any, Any, T], ctx: contextvars.Context) -> T:
    # run_coroutine_threadsafe creates the task in the loop thread's context; re-enter the caller's
    # context so ContextVar-based settings behave as if the call ran in the calling thread.
    task: asyncio.Task[T] = asyncio.get_running_loop().create_task(coro, context=ctx)
    return await task


def _shutdown() -> None:
    for holder in _thread_loops:
        holder.close()
    loop = _loop
    if loop is not None and loop.is_running():

        async def hooks() -> None:
            for hook in _shutdown_hooks:
                await hook()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(hooks(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)


atexit.register(_shutdown)
