"""One thread per disk cache owns its SQLite connection: calls, batched writes, background work.

An SQLite connection belongs to one thread, and the disk tier used to open one per thread that
touched it (through diskcache): used from 32 worker threads it held 32 connections, about 100 file
descriptors, for as long as those threads lived. Here every database operation runs on one worker
thread instead:

* :meth:`DiskWorker.call` runs a function there and waits for its result (reads, ``len``,
  ``clear``, ``close``);
* :meth:`DiskWorker.write_later` queues a write and returns at once; the worker lingers up to
  half a second (or until 4,096 writes wait) so that writes arriving together go to disk in one
  transaction, in key order, and until then :meth:`DiskWorker.pending` answers reads of them (at
  exit, and in :meth:`DiskWorker.flush`, queued writes are written at once);
* background steps (loading the key filter) run when nothing else is waiting.

The thread starts on first use and exits, closing its connection, after a few idle seconds; the
next use starts it again. At exit, queued writes are flushed.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

__all__ = ["BackgroundTask", "DiskWorker"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: how long queued writes wait for company before they are written together
LINGER_S = 0.5
#: queued writes that start a write at once, without waiting for the linger to end
BATCH = 4096
#: an idle worker closes its connection and ends after this long
IDLE_EXIT_S = 2.0


class BackgroundTask(Protocol):
    """Low-priority work done in steps on the worker thread."""

    def step(self) -> bool:
        """Do a bounded piece of work; return True when there is more to do."""
        ...

    def reset(self) -> None:
        """The worker thread ended (its connection closed): the next step starts over."""
        ...


class DiskWorker:
    """The one thread that touches a disk cache's database (see the module docstring).

    Args:
        name: the thread's name.
        write: writes a batch of ``(key, text)`` pairs in one transaction (on the worker thread;
            it must not raise).
        disconnect: closes the worker thread's connection (on the worker thread, when it exits).
    """

    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[tuple[str, str]]], None],
        disconnect: Callable[[], None],
    ) -> None:
        self._name = name
        self._write = write
        self._disconnect = disconnect
        self._reinit()
        _workers.add(self)

    def _reinit(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._writes: dict[str, str] = {}
        self._writing: dict[str, str] = {}
        self._write_due: float | None = None
        # Writes queued so far, and the count written: flush waits for the writes queued before
        # it, not for a queue that other threads may keep filling.
        self._queued = 0
        self._written = 0
        self._flushes = 0
        self._tasks: list[BackgroundTask] = []
        self._running = False
        self._ident: int | None = None
        self._pid = os.getpid()

    # ---- the API used by DiskCache ----------------------------------------------------------
    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the worker thread and return its result (or raise its exception)."""
        if threading.get_ident() == self._ident:
            return fn()
        future: Future[T] = Future()
        with self._cond:
            self._calls.append((fn, future))
            self._wake()
        return future.result()

    def write_later(self, key: str, text: str) -> None:
        """Queue a write; a later write of the same key replaces it."""
        with self._cond:
            writes = self._writes
            writes[key] = text
            self._queued += 1
            if self._write_due is None:
                self._write_due = time.monotonic() + LINGER_S
                self._wake()
            elif len(writes) == BATCH:
                self._wake()
            # Otherwise the worker already waits for this batch's due time: waking it for every
            # write would cost a thread switch per call.

    def pending(self, key: str) -> str | None:
        """The text of a queued (or being written) write of ``key``, if any."""
        with self._cond:
            text = self._writes.get(key)
            return self._writing.get(key) if text is None else text

    def flush(self) -> None:
        """Wait until every queued write has been written."""
        if threading.get_ident() == self._ident:
            self._write_now()
            return
        with self._cond:
            target = self._queued
            if self._written >= target:
                return
            self._flushes += 1
            try:
                self._wake()
                while self._written < target:
                    self._cond.wait()
            finally:
                self._flushes -= 1

    def add_task(self, task: BackgroundTask) -> None:
        with self._cond:
            self._tasks.append(task)
            self._wake()

    # ---- the thread ---------------------------------------------------------------------------
    def _wake(self) -> None:
        # Called with the lock held.
        if self._pid != os.getpid():  # pragma: no cover - _after_fork resets first
            return
        if self._running:
            self._cond.notify_all()
            return
        self._running = True
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        thread.start()

    def _run(self) -> None:
        self._ident = threading.get_ident()
        ended_idle = False
        try:
            while True:
                job = self._next_job()
                if job is None:
                    ended_idle = True  # _next_job marked the worker stopped, under the lock
                    return
                try:
                    job()
                except Exception:  # the worker must survive anything a job does
                    logger.debug("disk cache worker job failed", exc_info=True)
        finally:
            if not ended_idle:  # pragma: no cover - only if the loop itself failed
                with self._cond:
                    self._running = False
                    self._ident = None
                    for task in self._tasks:
                        task.reset()
            try:
                self._disconnect()
            except Exception:
                logger.debug("closing the disk cache connection failed", exc_info=True)

    def _next_job(self) -> Callable[[], None] | None:
        with self._cond:
            idle_since = time.monotonic()
            while True:
                if self._calls:
                    fn, future = self._calls.popleft()
                    return lambda: _run_call(fn, future)
                now = time.monotonic()
                due = self._write_due if self._write_due is not None else now
                writes = len(self._writes)
                if writes and (now >= due or self._flushes or writes >= BATCH):
                    return self._write_now
                if self._tasks:
                    task = self._tasks[0]
                    return lambda: self._step(task)
                if self._writes:
                    self._cond.wait(due - now)
                    continue
                if now - idle_since >= IDLE_EXIT_S:
                    self._running = False
                    self._ident = None
                    return None
                self._cond.wait(IDLE_EXIT_S - (now - idle_since))

    def _write_now(self) -> None:
        with self._cond:
            batch = self._writes
            self._writing, self._writes = batch, {}
            self._write_due = None
            queued = self._queued
        # One transaction, keys in order. Keys are hashes, so each write lands on a random page
        # of the key index, and what a commit costs is mostly the pages it dirties: 256 writes
        # a transaction cost 17 us of CPU each here, 4,096 in key order 5 us (SQLite 3.40).
        items = sorted(batch.items())
        try:
            self._write(items)
        finally:
            with self._cond:
                self._writing = {}
                self._written = max(self._written, queued)
                self._cond.notify_all()

    def _step(self, task: BackgroundTask) -> None:
        more = False
        try:
            more = task.step()
        finally:
            if not more:
                with self._cond:
                    if task in self._tasks:
                        self._tasks.remove(task)

    def _after_fork(self) -> None:
        # The parent's thread, lock and queue do not exist in the child: start afresh. Writes
        # the parent queued are the parent's to make.
        tasks = self._tasks
        self._reinit()
        for task in tasks:
            task.reset()
            self._tasks.append(task)


def _run_call(fn: Callable[[], Any], future: Future[Any]) -> None:
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


_workers: weakref.WeakSet[DiskWorker] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for worker in list(_workers):
        worker._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _flush_all() -> None:
    for worker in list(_workers):
        try:
            worker.flush()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            logger.debug("flushing the disk cache at exit failed", exc_info=True)
