"""A fast HTTP/1.1 transport: asyncio protocols over httptools' C parser (``tgispy[speed]``).

:class:`FastTransport` implements :class:`~tgispy.tgi._transport.AsyncTransport` with what one
replica exchange really needs and nothing else: a keep-alive pool per (event loop, origin, TLS
setting), the request written in one ``transport.write``, the response framed by ``httptools``
(llhttp, the parser of Node.js and uvicorn), and one timer per attempt for all three limits.
aiohttp spends most of a loopback call's CPU in its general-purpose request machinery (cookie
jars, tracing signals, multidicts, per-request timer contexts); this module skips it.

The pools follow :mod:`tgispy.tgi._transport`'s sessions: shared by every client on a loop and
closed when the loop shuts down its async generators (``asyncio.run``, pytest-asyncio, the sync
face's private loops). httptools is imported only when a :class:`FastTransport` is constructed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from tgispy._sync import on_loop_shutdown
from tgispy.errors import ConnectError, TGIError, TGITimeoutError, TransportError
from tgispy.tgi._transport import (
    MAX_REDIRECTS,
    HTTPRequest,
    HTTPResponse,
    check_verify,
    origin,
    redirect_target,
)

__all__ = ["FastTransport", "close_connections"]

# A spent budget is a timeout, never "no timeout" (as in the aiohttp transport).
_MIN_TIMEOUT = 0.001
# A stream's unread body past this pauses the socket until the consumer drains it.
_HIGH_WATER = 1 << 20
# An idle connection older than this is closed rather than reused (servers drop them anyway).
_IDLE_S = 30.0
# The stale keep-alive race: a reused connection that was idle at least _STALE_IDLE_S and fails
# within _STALE_WINDOW_S of the write, before any response byte, lost a race with the server's
# idle timeout (its close crossed our request); it is retried once on a fresh connection. A
# busy connection failing, or one failing later, is a server dying mid-request: not retried here.
_STALE_IDLE_S = 1.0
_STALE_WINDOW_S = 1.0
# A timer may fire a hair early (the loop's clock resolution): count that as due.
_SLACK = 1e-4
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})

_Key = tuple[str, str, int, str]  # scheme, host, port, TLS setting


def _parser_class() -> Any:
    """httptools' response parser, or the ImportError naming the extra to install."""
    try:
        import httptools
    except ImportError:
        raise ImportError("FastTransport needs httptools: pip install 'tgispy[speed]'") from None
    return httptools.HttpResponseParser


# ---- one connection ------------------------------------------------------------------------------
class _Conn(asyncio.Protocol):
    """One HTTP/1.1 connection: a protocol fed by the loop, and the state of its current exchange.

    Callbacks (the loop's and httptools') only record and wake; the coroutine of
    :class:`FastTransport` drives the exchange. One timer handle serves all limits: it is armed at
    the earliest pending deadline and, when it fires before anything is due (data arrived in the
    meantime), re-armed at the new earliest one.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_connect_at",
        "_connecting",
        "_error",
        "_got_bytes",
        "_head",
        "_headers",
        "_keep_alive",
        "_last",
        "_loop",
        "_parser",
        "_paused",
        "_read",
        "_status",
        "_stream",
        "_timed_out",
        "_timer",
        "_total_at",
        "_transport",
        "_until_close",
        "_waiter",
        "_waiting",
        "_where",
        "busy",
        "closed",
        "idle_since",
        "stale",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, parser: Any, where: str) -> None:
        self._loop = loop
        self._parser = parser(self)
        self._where = where
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.busy = False
        self.stale = False
        self.idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._connecting: asyncio.Task[Any] | None = None
        self._connect_at: float | None = None
        self._timed_out = False
        self._reset(None, None, stream=False)

    def _reset(self, read: float | None, total_at: float | None, *, stream: bool) -> None:
        self._read = read
        self._total_at = total_at
        self._stream = stream
        self._waiter: asyncio.Future[None] | None = None
        self._waiting = not stream
        self._error: TransportError | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._head = False
        self._complete = False
        self._got_bytes = False
        self._keep_alive = False
        self._until_close = False
        self._paused = False
        self._last = 0.0

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # bytes on an idle connection: the server broke the protocol
            self.abort()
            return
        if self._read is not None:
            self._last = self._loop.time()
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except Exception as exc:  # httptools' parser errors (or an upgrade we never asked for)
            self._fail(
                TransportError(
                    f"HTTP transport error talking to {self._where}: malformed response "
                    f"({type(exc).__name__}: {exc})"
                )
            )

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.busy or self._complete:
            return
        if self._head and self._until_close and self._error is None and exc is None:
            # A body without Content-Length or chunking ends when the server closes.
            self._complete = True
            self._keep_alive = False
            self._wake()
            return
        self.stale = not self._got_bytes
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else "connection closed"
        self._fail(
            TransportError(
                f"HTTP transport error talking to {self._where}: the server closed the "
                f"connection before the response was complete ({detail})"
            )
        )

    # -- httptools callbacks -----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._status = parser.get_status_code()
        self._keep_alive = parser.should_keep_alive()
        headers = self._headers
        self._until_close = "content-length" not in headers and "transfer-encoding" not in headers
        self._head = True
        if self._stream:
            self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        if self._stream:
            self._buffered += len(body)
            if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
                self._paused = True
                self._transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        self._wake()

    # -- the exchange ------------------------------------------------------------------------------
    def begin(
        self, data: bytes, read: float | None, total_at: float | None, *, stream: bool
    ) -> None:
        """Start an exchange: reset its state, write the request, arm the timer."""
        self._reset(read, total_at, stream=stream)
        self.busy = True
        if read is not None:
            self._last = self._loop.time()
        assert self._transport is not None
        self._transport.write(data)
        self._arm()

    async def wait(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()`` (or raise the exchange's error)."""
        while not done():
            if self._error is not None:
                raise self._error
            waiter = self._waiter = self._loop.create_future()
            if self._stream:
                self._waiting = True
                if self._read is not None:
                    self._last = max(self._last, self._loop.time())
                self._arm()
                try:
                    await waiter
                finally:
                    self._waiting = False
            else:
                await waiter
        if self._error is not None and not self._complete:
            raise self._error

    def head_done(self) -> bool:
        return self._head or self._complete

    def complete(self) -> bool:
        return self._complete

    def has_data(self) -> bool:
        return bool(self._chunks) or self._complete

    def response(self) -> HTTPResponse:
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return HTTPResponse(self._status, self._headers, body)

    def head(self) -> HTTPResponse:
        return HTTPResponse(self._status, self._headers, b"")

    @property
    def status(self) -> int:
        return self._status

    def take(self) -> bytes:
        """The body bytes buffered so far (b"" if none); resumes a paused socket."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            if self._transport is not None:
                self._transport.resume_reading()
        return data

    def release(self, pool: list[_Conn]) -> None:
        """End the exchange: back to ``pool`` if the connection may carry another, else close."""
        self._cancel_timer()
        self.busy = False
        self._waiter = None
        if self._keep_alive and self._complete and not self.closed and not self._paused:
            self.idle_since = self._loop.time()
            pool.append(self)
        else:
            self.abort()

    def abort(self) -> None:
        """Drop the connection (never reuse a half-read one)."""
        self._cancel_timer()
        self.closed = True
        transport = self._transport
        if transport is not None:
            transport.abort()

    # -- wake-ups, failures and the one timer ------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: TransportError) -> None:
        if self._error is None:
            self._error = error
        self.abort()
        self._wake()

    def _due(self) -> float | None:
        if self._connecting is not None:
            due = self._connect_at
            total = self._total_at
            if due is None or (total is not None and total < due):
                due = total
            return due
        if not self.busy or self._complete:
            return None
        due = self._total_at
        if self._read is not None and self._waiting:
            at = self._last + self._read
            if due is None or at < due:
                due = at
        return due

    def _arm(self) -> None:
        due = self._due()
        if due is None:
            return
        timer = self._timer
        if timer is not None:
            if timer.when() <= due:
                return
            timer.cancel()
        self._timer = self._loop.call_at(due, self._on_timer)

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    def _on_timer(self) -> None:
        self._timer = None
        due = self._due()
        if due is None:
            return
        if due > self._loop.time() + _SLACK:
            self._timer = self._loop.call_at(due, self._on_timer)
            return
        if self._connecting is not None:
            self._timed_out = True
            self._connecting.cancel()
        else:
            self._fail(TGITimeoutError(f"timed out talking to {self._where}"))

    async def connect(
        self,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        connect: float | None,
        total_at: float | None,
    ) -> None:
        """Open the TCP (and TLS) connection within the connect and total limits."""
        loop = self._loop
        self._total_at = total_at
        self._connect_at = None if connect is None else loop.time() + max(connect, _MIN_TIMEOUT)
        task = asyncio.current_task()
        if task is not None and (self._connect_at is not None or total_at is not None):
            self._connecting = task
            self._arm()
        try:
            await loop.create_connection(
                lambda: self,
                host,
                port,
                ssl=tls,
                server_hostname=host if tls is not None else None,
            )
        except asyncio.CancelledError:
            self.abort()
            if self._timed_out and task is not None:
                task.uncancel()
                raise TGITimeoutError(f"timed out talking to {self._where}") from None
            raise
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            self.abort()
            raise ConnectError(f"cannot connect to {self._where}: {exc}") from exc
        except BaseException:
            self.abort()
            raise
        finally:
            self._connecting = None
        if self._timed_out:  # fired as the connection completed: the budget is spent anyway
            self.abort()
            raise TGITimeoutError(f"timed out talking to {self._where}")


# ---- pools: per event loop, closed with it ------------------------------------------------------
class _Pools(dict[_Key, list[_Conn]]):
    """A loop's idle connections per origin and TLS setting (LIFO lists)."""

    closed = False


class _LoopPools:
    """One :class:`_Pools` per running event loop; closed when the loop shuts down."""

    def __init__(self) -> None:
        self._pools: dict[int, tuple[asyncio.AbstractEventLoop, _Pools]] = {}
        self._guards: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def get(self, loop: asyncio.AbstractEventLoop) -> _Pools:
        entry = self._pools.get(id(loop))
        if entry is not None and entry[0] is loop and not entry[1].closed:
            return entry[1]
        pools = _Pools()
        self._pools[id(loop)] = (loop, pools)
        self._install_guard(loop)
        return pools

    def _install_guard(self, loop: asyncio.AbstractEventLoop) -> None:
        # As in _transport._LoopSessions: an async generator parked at its first yield, closed by
        # the loop's shutdown_asyncgens(), whose finally clause closes the loop's connections.
        loop_id = id(loop)
        guard = self._guards.get(loop_id)
        if guard is not None and guard[0] is loop:
            return

        async def guard_gen() -> AsyncGenerator[None, None]:
            try:
                yield None
            finally:
                if self._guards.get(loop_id, (None,))[0] is loop:
                    del self._guards[loop_id]
                await self.close_loop(loop)

        gen = guard_gen()
        self._guards[loop_id] = (loop, gen)
        step: Any = gen.asend(None)
        with contextlib.suppress(StopIteration):  # the guard parks at its yield
            step.send(None)

    async def close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        entry = self._pools.get(id(loop))
        if entry is None or entry[0] is not loop:
            return
        del self._pools[id(loop)]
        pools = entry[1]
        pools.closed = True
        for conns in pools.values():
            for conn in conns:
                conn.abort()
        pools.clear()
        await asyncio.sleep(0)  # let the transports finish closing their sockets


_POOLS = _LoopPools()

_TLS: dict[str, ssl.SSLContext] = {}


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    key = repr(verify)
    context = _TLS.get(key)
    if context is None:
        if isinstance(verify, str):
            context = ssl.create_default_context(cafile=verify)
        else:
            context = ssl.create_default_context()
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
        _TLS[key] = context
    return context


# ---- requests -----------------------------------------------------------------------------------
class _Route:
    """What one (method, URL) needs on the wire, parsed once."""

    __slots__ = ("host", "key", "port", "prefix", "tls", "where")

    def __init__(self, method: str, url: str, verify: bool | str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise TransportError(f"unsupported URL scheme {scheme!r}: use http or https")
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise TransportError("invalid port in the replica URL") from None
        if not host:
            raise TransportError("the replica URL has no host")
        self.host = host
        self.port = port
        self.tls = scheme == "https"
        self.key: _Key = (scheme, host.lower(), port, repr(verify) if self.tls else "")
        self.where = f"{scheme}://{host.lower()}:{port}"
        netloc = parts.netloc.rpartition("@")[2]
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/?&=%:@!$'()*+,;-._~")
        self.prefix = f"{method} {target} HTTP/1.1\r\nHost: {netloc}\r\n".encode()


def _header_block(headers: Mapping[str, str], stream: bool) -> bytes:
    lines = []
    names = set()
    for name, value in headers.items():
        lower = name.lower()
        if lower in _OWN_HEADERS or (stream and lower == "accept"):
            continue
        if any(c in name or c in value for c in "\r\n\0"):
            raise TransportError(f"request header {name!r} contains CR, LF or NUL")
        names.add(lower)
        lines.append(f"{name}: {value}\r\n")
    if "user-agent" not in names:
        lines.append("User-Agent: tgispy\r\n")
    if stream:
        lines.append("Accept: text/event-stream\r\n")
    return "".join(lines).encode("utf-8")  # as aiohttp does


class FastTransport:
    """A fast HTTP/1.1 transport for the hot path (the ``tgispy[speed]`` extra).

    Implements :class:`AsyncTransport` over asyncio protocols and httptools' C parser: keep-alive
    connections pooled per event loop, origin and TLS setting (shared by every client on the
    loop, closed with it), each request written in one piece, one timer per attempt for the
    connect, read and total limits. Same contract as :class:`AiohttpTransport`: only tgispy
    errors, same-origin 307/308 redirects followed, no cross-origin one. A long-idle connection
    that the server closed just as the request went out is retried once on a fresh connection.

    Args:
        verify: TLS verification: ``True``, ``False`` or the path of a CA bundle (checked now).

    Raises:
        ImportError: httptools is not installed (``pip install 'tgispy[speed]'``).

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.tgi import FastTransport
        >>> lm = dspy.HFClientTGI("m", 8080, "http://localhost", transport=FastTransport())
        >>> FastTransport(verify=False)
        FastTransport(verify=False)
    """

    def __init__(self, *, verify: bool | str = True) -> None:
        self._parser = _parser_class()
        self._verify = check_verify(verify)
        self._routes: dict[tuple[str, str], _Route] = {}
        self._blocks: dict[tuple[tuple[tuple[str, str], ...], bool], bytes] = {}
        # the last loop's pools, as one tuple: threads (the sync face) each run their own loop
        self._last: tuple[asyncio.AbstractEventLoop | None, _Pools] = (None, _Pools())

    def __repr__(self) -> str:
        return f"FastTransport(verify={self._verify!r})"

    # -- helpers -----------------------------------------------------------------------------------
    def _route(self, method: str, url: str) -> _Route:
        route = self._routes.get((method, url))
        if route is None:
            route = _Route(method, url, self._verify)
            if len(self._routes) >= 256:
                self._routes.clear()
            self._routes[(method, url)] = route
        return route

    def _request_bytes(self, route: _Route, request: HTTPRequest, stream: bool) -> bytes:
        key = (tuple(request.headers.items()), stream)
        block = self._blocks.get(key)
        if block is None:
            block = _header_block(request.headers, stream)
            if len(self._blocks) >= 64:
                self._blocks.clear()
            self._blocks[key] = block
        body = request.body
        if body or request.method not in _BODYLESS:
            return b"%s%sContent-Length: %d\r\n\r\n%s" % (route.prefix, block, len(body), body)
        return route.prefix + block + b"\r\n"

    def _pool(self, loop: asyncio.AbstractEventLoop, route: _Route) -> list[_Conn]:
        last_loop, pools = self._last
        if last_loop is not loop or pools.closed:
            pools = _POOLS.get(loop)
            self._last = (loop, pools)
        pool = pools.get(route.key)
        if pool is None:
            pool = pools[route.key] = []
        return pool

    async def _open(
        self,
        loop: asyncio.AbstractEventLoop,
        route: _Route,
        request: HTTPRequest,
        total_at: float | None,
    ) -> _Conn:
        conn = _Conn(loop, self._parser, route.where)
        tls = _tls_context(self._verify) if route.tls else None
        await conn.connect(route.host, route.port, tls, request.timeouts.connect, total_at)
        return conn

    async def _start(
        self,
        request: HTTPRequest,
        url: str,
        total_at: float | None,
        *,
        stream: bool,
    ) -> tuple[_Conn, list[_Conn]]:
        """Send on a pooled (or new) connection; return it once the response head is in.

        For ``send`` (``stream=False``) the whole response is in. The stale keep-alive race
        (the server closed an idle connection just as the request went out on it) is retried
        once on a fresh connection (see ``_STALE_IDLE_S``).
        """
        loop = asyncio.get_running_loop()
        route = self._route(request.method, url)
        pool = self._pool(loop, route)
        data = self._request_bytes(route, request, stream)
        read = request.timeouts.read
        if read is not None:
            read = max(read, _MIN_TIMEOUT)
        conn: _Conn | None = None
        now = loop.time()
        idle = 0.0
        while pool:
            candidate = pool.pop()
            idle = now - candidate.idle_since
            if not candidate.closed and idle < _IDLE_S:
                conn = candidate
                break
            candidate.abort()
        may_retry = conn is not None and idle >= _STALE_IDLE_S
        first: TransportError | None = None
        while True:
            if conn is None:
                try:
                    conn = await self._open(loop, route, request, total_at)
                except ConnectError as exc:
                    if first is not None:  # the first try went out: never "nothing was sent"
                        raise first from exc
                    raise
            sent_at = loop.time()
            conn.begin(data, read, total_at, stream=stream)
            try:
                await conn.wait(conn.head_done if stream else conn.complete)
            except TransportError as exc:
                conn.abort()
                if may_retry and conn.stale and loop.time() - sent_at < _STALE_WINDOW_S:
                    conn, may_retry, first = None, False, exc
                    continue
                raise
            except BaseException:
                conn.abort()
                raise
            return conn, pool

    # -- AsyncTransport ----------------------------------------------------------------------------
    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read the whole response (same-origin 307/308 followed)."""
        try:
            total_at = _total_at(request)
            url = request.url
            for _ in range(MAX_REDIRECTS + 1):
                conn, pool = await self._start(request, url, total_at, stream=False)
                resp = conn.response()
                conn.release(pool)
                if resp.status in (307, 308):
                    url = redirect_target(url, resp.status, resp.headers.get("location"))
                    continue
                return resp
            raise TransportError(f"more than {MAX_REDIRECTS} redirects")
        except TGIError:
            raise
        except Exception as exc:
            raise _unexpected(exc, request.url) from exc

    async def stream(self, request: HTTPRequest) -> AsyncGenerator[HTTPResponse | bytes, None]:
        """Send ``request`` and yield the response head (body empty), then raw body chunks.

        A non-2xx response yields one :class:`HTTPResponse` with its whole body and stops.
        Closing the generator early closes the connection.
        """
        try:
            conn, pool = await self._start(request, request.url, _total_at(request), stream=True)
        except TGIError:
            raise
        except Exception as exc:
            raise _unexpected(exc, request.url) from exc
        finished = False
        try:
            if conn.status >= 300:
                await conn.wait(conn.complete)
                resp = conn.response()
                finished = True
                conn.release(pool)
                yield resp
                return
            yield conn.head()
            while True:
                await conn.wait(conn.has_data)
                data = conn.take()
                if data:
                    yield data
                elif conn.complete():
                    break
            finished = True
            conn.release(pool)
        except TGIError:
            raise
        except Exception as exc:
            raise _unexpected(exc, request.url) from exc
        finally:
            if not finished:
                conn.abort()


def _unexpected(exc: Exception, url: str) -> TransportError:
    scheme, host, port = origin(url)
    return TransportError(
        f"unexpected error talking to {scheme}://{host}:{port}: {type(exc).__name__}"
    )


def _total_at(request: HTTPRequest) -> float | None:
    total = request.timeouts.total
    if total is None:
        return None
    return asyncio.get_running_loop().time() + max(total, _MIN_TIMEOUT)


async def close_connections() -> None:
    """Close the current loop's pooled connections (they are also closed with the loop)."""
    await _POOLS.close_loop(asyncio.get_running_loop())


on_loop_shutdown(close_connections)
