"""The sync face: run coroutines of the async core on one private event-loop thread.

Every blocking API of tgispy (``lm(prompt)``, ``HFClientTGI._generate``, ``Module.__call__``) is
a thin wrapper that hands the coroutine of its async twin to :func:`run_sync`. There is exactly one
code path for each operation; the sync face only waits for it.

One loop thread for the whole process keeps connection pools, replica state and ``/info`` caches
shared by every caller thread, and works from inside a running event loop (Jupyter) too.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


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
            new_loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=_run_loop, args=(new_loop, ready), name="tgispy-loop", daemon=True
            )
            thread.start()
            ready.wait()
            _loop, _thread = new_loop, thread
        return _loop


def in_background_loop() -> bool:
    """True when called from the sync face's own loop thread."""
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and block until it finishes.

    The caller's :mod:`contextvars` context (``tgispy.context(lm=...)``) travels with the coroutine.
    """
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


async def _in_context(coro: Coroutine[Any, Any, T], ctx: contextvars.Context) -> T:
    # run_coroutine_threadsafe creates the task in the loop thread's context; re-enter the caller's
    # context so ContextVar-based settings behave as if the call ran in the calling thread.
    task: asyncio.Task[T] = asyncio.get_running_loop().create_task(coro, context=ctx)
    return await task


def _shutdown() -> None:
    loop = _loop
    if loop is not None and loop.is_running():
        loop.call_soon_threadsafe(loop.stop)


atexit.register(_shutdown)
