"""Connection-level defences of ``tgispy serve``: a connection cap, header timeouts, quiet EMFILE.

aiohttp waits forever for a request head that never completes, so each half-open request held a
file descriptor for good: 1,100 of them (with the usual 1,024-descriptor limit) left ``/health``
unanswered, and asyncio logged a traceback for every failed ``accept()``. Here:

* :class:`ConnectionGuard` counts connections and knows which are *idle* (no request in
  progress: still sending a request head, or kept alive between requests). An idle connection
  is closed when its request head takes longer than ``header_timeout_s`` or it stays silent past
  ``keepalive_timeout_s``. At ``max_connections`` a newcomer takes the place of the
  longest-idle connection; when every connection is busy it gets a short 503 and is closed. So
  half-open connections can never starve real requests.
* :class:`GuardedSite` listens with the guard in front of aiohttp's protocol;
  :meth:`ConnectionGuard.middleware` tells it when requests start and end.
* :class:`AcceptErrorLog` is an event-loop exception handler that logs ``accept()`` failures
  (EMFILE and friends) at most once per interval, with the number it left out.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

__all__ = [
    "AcceptErrorLog",
    "ConnectionGuard",
    "GuardedSite",
    "default_max_connections",
]

logger = logging.getLogger(__name__)

_BODY: Final = b'{"error":"Too many open connections","error_type":"overloaded"}'
#: what a connection over the cap gets before it is closed
REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _BODY
)
_ACCEPT_FAILURE: Final = "socket.accept() out of system resource"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default_max_connections(soft_limit: int | None = None) -> int:
    """Connections that fit in the process's file-descriptor limit, less a reserve.

    The reserve (an eighth, at least 32) keeps descriptors for the model, logs, sockets to the
    engine and worker threads, so that ``accept()`` never fails for lack of one.

    Example:
        >>> default_max_connections(1024)
        896
    """
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY or soft_limit > 65_536:
        soft_limit = 65_536
    return max(16, soft_limit - max(32, soft_limit // 8))


class _Connection:
    """One accepted connection, as the guard sees it."""

    __slots__ = ("busy", "fresh_idle", "protocol", "timer", "transport")

    def __init__(self, protocol: _GuardedProtocol, transport: asyncio.Transport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.busy = 0
        #: idle and no byte of a next request seen yet (the keep-alive timeout applies)
        self.fresh_idle = False
        self.timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """Connection cap and idle/header timeouts for one listening server.

    Args:
        max_connections: open connections at once (see :func:`default_max_connections`).
        header_timeout_s: seconds a connection may take to send a complete request head.
        keepalive_timeout_s: seconds a kept-alive connection may stay silent.

    Example:
        >>> guard = ConnectionGuard(max_connections=100, header_timeout_s=10,
        ...                         keepalive_timeout_s=75)
        >>> guard.open, guard.refused, guard.evicted, guard.timed_out
        (0, 0, 0, 0)
    """

    def __init__(
        self, *, max_connections: int, header_timeout_s: float, keepalive_timeout_s: float
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.keepalive_timeout_s = keepalive_timeout_s
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}
        #: idle connections, longest idle first (dicts keep insertion order)
        self._idle: dict[_Connection, None] = {}
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    @property
    def open(self) -> int:
        """Connections currently open."""
        return len(self._by_transport)

    def protocol_factory(
        self, inner: Callable[[], asyncio.BaseProtocol]
    ) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory (``runner.server``) with this guard."""

        def factory() -> asyncio.Protocol:
            protocol = inner()
            assert isinstance(protocol, asyncio.Protocol)
            return _GuardedProtocol(self, protocol)

        return factory

    # --- the protocol's events -------------------------------------------------------------

    def admit(self, protocol: _GuardedProtocol, transport: asyncio.Transport) -> bool:
        """A new connection: make room if needed; ``False`` refuses it (every one is busy)."""
        if len(self._by_transport) >= self.max_connections and not self._evict_one():
            self.refused += 1
            return False
        conn = _Connection(protocol, transport)
        self._by_transport[transport] = conn
        protocol.connection = conn
        self._set_idle(conn, fresh=False)
        return True

    def data_received(self, conn: _Connection) -> None:
        """The first byte of a request starts its header timeout (and ends its keep-alive)."""
        if conn.fresh_idle:
            conn.fresh_idle = False
            self._arm(conn, self.header_timeout_s)

    def forget(self, conn: _Connection) -> None:
        """The connection is gone."""
        self._by_transport.pop(conn.transport, None)
        self._idle.pop(conn, None)
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None

    # --- requests (through the middleware) -----------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the request's connection busy while its handler runs."""
        transport = request.transport
        conn = self._by_transport.get(transport) if transport is not None else None
        if conn is None:  # an in-process test server or another site: nothing to guard
            return await handler(request)
        conn.busy += 1
        self._idle.pop(conn, None)
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        try:
            return await handler(request)
        finally:
            conn.busy -= 1
            if not conn.busy and conn.transport in self._by_transport:
                self._set_idle(conn, fresh=True)

    # --- internals -------------------------------------------------------------------------

    def _set_idle(self, conn: _Connection, *, fresh: bool) -> None:
        conn.fresh_idle = fresh
        self._idle.pop(conn, None)
        self._idle[conn] = None
        self._arm(conn, self.keepalive_timeout_s if fresh else self.header_timeout_s)

    def _arm(self, conn: _Connection, delay: float) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
        loop = asyncio.get_running_loop()
        conn.timer = loop.call_later(delay, self._expire, conn)

    def _expire(self, conn: _Connection) -> None:
        conn.timer = None
        if conn.busy or conn.transport not in self._by_transport:
            return
        self.timed_out += 1
        self._close(conn)

    def _evict_one(self) -> bool:
        """Close the longest-idle connection that has nothing left to send."""
        for conn in self._idle:
            if conn.transport.get_write_buffer_size() == 0:
                self.evicted += 1
                self._close(conn)
                return True
        return False

    def _close(self, conn: _Connection) -> None:
        self.forget(conn)
        # abort: the descriptor is freed now, not after a lingering close
        conn.transport.abort()


class _GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol behind the guard: refused connections never reach it."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.connection: _Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.guard.admit(self, transport):
            transport.write(REFUSAL)
            transport.close()
            return
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.connection is None:
            return  # refused: whatever it sends is dropped
        self.guard.data_received(self.connection)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.connection is None:
            return None
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is None:
            return
        self.guard.forget(self.connection)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.connection is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.connection is not None:
            self.inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass through a :class:`ConnectionGuard`.

    Example:
        >>> site = GuardedSite(runner, "127.0.0.1", 0, guard)  # doctest: +SKIP
        >>> await site.start()  # doctest: +SKIP
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        guard: ConnectionGuard,
        *,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard
        self._aiohttp_server = runner.server

    @property
    def name(self) -> str:
        """The site's URL."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen on ``host:port``."""
        await super().start()
        server = self._aiohttp_server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )


class AcceptErrorLog:
    """An event-loop exception handler that rate-limits ``accept()`` failure reports.

    asyncio reports each failed ``accept()`` (EMFILE: out of file descriptors) with a
    traceback; under a connection flood that wrote 108 MB of log in 40 s. This logs the first
    one, then at most one line per ``interval_s`` with how many were left out; everything else
    goes to the loop's default handler.

    Example:
        >>> loop = asyncio.new_event_loop()
        >>> loop.set_exception_handler(AcceptErrorLog(interval_s=10.0))
        >>> loop.close()
    """

    def __init__(
        self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self.suppressed = 0
        self.logged = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not str(context.get("message", "")).startswith(_ACCEPT_FAILURE):
            loop.default_exception_handler(context)
            return
        now = self._clock()
        if self._last is not None and now - self._last < self.interval_s:
            self.suppressed += 1
            return
        self._last = now
        self.logged += 1
        exc = context.get("exception")
        more = f" ({self.suppressed} more since the last report)" if self.suppressed else ""
        self.suppressed = 0
        logger.error(
            "cannot accept connections: %s%s; lower --max-connections or raise the "
            "file-descriptor limit (ulimit -n)",
            exc if exc is not None else "out of resources",
            more,
        )
