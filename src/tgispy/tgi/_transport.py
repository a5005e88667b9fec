"""The transport seam: one HTTP exchange with one replica, and its aiohttp implementation.

:class:`AsyncTransport` is the protocol the client core talks to (in the spirit of httpx's
transports): it sends one :class:`HTTPRequest` and returns an :class:`HTTPResponse`, or for a
streaming request an async generator that yields the response head first and then raw body chunks.
It never retries, routes or parses; it raises only errors of tgispy's error tree
(:class:`~tgispy.errors.ConnectError`, :class:`~tgispy.errors.TGITimeoutError`,
:class:`~tgispy.errors.TransportError`). :class:`AiohttpTransport` is the default one and the only
module that imports aiohttp; :class:`tgispy.testing.MockTransport` answers in-process for tests.

One ``aiohttp.ClientSession`` (one keep-alive pool) per event loop and TLS setting is shared by
every client on that loop; it is closed when the loop shuts down its async generators
(``asyncio.run`` and pytest-asyncio do), so callers never have to remember to close it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urljoin, urlsplit

from tgispy._sync import on_loop_shutdown
from tgispy.errors import ConfigError, ConnectError, TGIError, TGITimeoutError, TransportError

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "TRANSPORT_ENV",
    "AiohttpTransport",
    "AsyncTransport",
    "AttemptTimeouts",
    "HTTPRequest",
    "HTTPResponse",
    "check_verify",
    "close_sessions",
    "default_transport",
    "origin",
]

#: ``aiohttp`` or ``fast``: which transport clients use when none is passed (default: ``fast``
#: when httptools, of the ``tgispy[speed]`` extra, is installed, else ``aiohttp``)
TRANSPORT_ENV = "TGISPY_TRANSPORT"

logger = logging.getLogger(__name__)

#: redirects followed per request (same origin only, 307/308 only: they keep method and body)
MAX_REDIRECTS = 5

# aiohttp treats a timeout of 0 as "no timeout": a spent budget must never become that.
_MIN_TIMEOUT = 0.001


@dataclass(frozen=True, slots=True)
class AttemptTimeouts:
    """Limits for one attempt, in seconds (``None``: off).

    Attributes:
        connect: opening the connection (TCP and TLS).
        read: the wait for the response head and then between two body chunks. For a whole
            (not streamed) response, whose body follows its head at once, a transport may count
            it from the start of the exchange instead, as :class:`AiohttpTransport` does.
        total: the whole exchange, from connect to the last byte.
    """

    connect: float | None = None
    read: float | None = None
    total: float | None = None


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """One HTTP exchange to send.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        url: the absolute URL (a replica's base URL plus the route).
        headers: request headers, credentials included; transports never log them.
        body: the request body.
        timeouts: the attempt's limits.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeouts: AttemptTimeouts = AttemptTimeouts()

    def __repr__(self) -> str:
        # Header values may be credentials: show names only.
        return f"HTTPRequest({self.method} {self.url}, headers={sorted(self.headers)})"


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """A response head and its whole body (empty for the head of a stream).

    Attributes:
        status: the HTTP status.
        headers: response headers, names lower-cased.
        body: the body bytes.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


@runtime_checkable
class AsyncTransport(Protocol):
    """What the client core needs from HTTP: one exchange with one replica.

    Implementations raise only tgispy errors (connect, timeout, transport) and follow no
    cross-origin redirect. Pass one as ``HFClientTGI(..., transport=...)``.
    """

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read the whole response."""
        ...

    def stream(self, request: HTTPRequest) -> AsyncGenerator[HTTPResponse | bytes, None]:
        """Send ``request``; yield the response head first, then raw body chunks.

        A non-2xx response yields one :class:`HTTPResponse` carrying its whole body and stops.
        """
        ...


def check_verify(verify: object) -> bool | str:
    """``verify`` as a transport takes it: ``True``, ``False`` or a readable CA bundle's path.

    Raises:
        ConfigError: anything else, or a path that is not a readable CA bundle (checked now,
            not at the first request).
    """
    if isinstance(verify, str):
        try:
            ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"verify={verify!r} is not a readable CA bundle ({exc.__class__.__name__}); "
                "pass the path of a PEM file, True (system CAs) or False"
            ) from None
        return verify
    if not isinstance(verify, bool):
        raise ConfigError(f"verify must be True, False or the path of a CA bundle, got {verify!r}")
    return verify


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, default ports filled in (for same-origin checks).

    Example:
        >>> origin("https://a.example/v1") == origin("https://a.example:443/x")
        True
    """
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def redirect_target(request_url: str, status: int, location: str | None) -> str:
    """Where a 307/308 may be followed: same origin only (credentials never change origin).

    Raises :class:`~tgispy.errors.TransportError` naming the fix for a cross-origin redirect.
    """
    if not location:
        raise TransportError(f"{status} redirect without a Location header")
    target = urljoin(request_url, location)
    if origin(target) != origin(request_url):
        scheme, host, port = origin(target)
        raise TransportError(
            f"the server redirected ({status}) to another origin, {scheme}://{host}:{port}; "
            "tgispy never follows a redirect to another origin, since the request carries your "
            "credentials; configure that URL as the replica instead"
        )
    return target


class _LoopSessions:
    """One aiohttp session per (event loop, TLS setting), closed with the loop."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[int, str], aiohttp.ClientSession] = {}
        self._guards: dict[int, Any] = {}

    def get(self, verify: bool | str) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        key = (id(loop), repr(verify))
        session = self._sessions.get(key)
        if session is not None and not session.closed:
            return session
        import aiohttp

        ssl_arg: bool | ssl.SSLContext
        if isinstance(verify, str):
            ssl_arg = ssl.create_default_context(cafile=verify)
        else:
            ssl_arg = verify if verify is False else True
        connector = aiohttp.TCPConnector(
            limit=0,  # replicas cap in-flight requests; the router enforces per-replica limits
            ssl=ssl_arg,
            keepalive_timeout=30,
            ttl_dns_cache=300,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            # (skip_auto_headers would cost ~15 us a request; a default User-Agent header does not)
            headers={"User-Agent": "tgispy"},
        )
        self._sessions[key] = session
        self._install_guard(loop)
        return session

    def _install_guard(self, loop: asyncio.AbstractEventLoop) -> None:
        # An async generator parked at its first yield: the loop's shutdown_asyncgens() closes it,
        # which runs its finally clause on the loop, where the sessions can be closed cleanly.
        loop_id = id(loop)
        if loop_id in self._guards:
            return

        async def guard() -> AsyncGenerator[None, None]:
            try:
                yield None
            finally:
                await self.close_loop(loop_id)

        gen = guard()
        self._guards[loop_id] = gen
        # Started synchronously: a task would still be pending if the loop closes right away.
        step: Any = gen.asend(None)
        with contextlib.suppress(StopIteration):  # the guard parks at its yield
            step.send(None)

    async def close_loop(self, loop_id: int) -> None:
        self._guards.pop(loop_id, None)
        for key in [k for k in self._sessions if k[0] == loop_id]:
            # pop with a default: a second closer (close_sessions, the guard) may race us here
            session = self._sessions.pop(key, None)
            if session is not None:
                await session.close()

    async def close_current(self) -> None:
        await self.close_loop(id(asyncio.get_running_loop()))


_SESSIONS = _LoopSessions()


class AiohttpTransport:
    """The default transport: aiohttp over shared keep-alive sessions.

    Args:
        verify: TLS verification: ``True``, ``False`` or the path of a CA bundle (checked now).

    Example:
        >>> AiohttpTransport(verify=False)
        AiohttpTransport(verify=False)
    """

    def __init__(self, *, verify: bool | str = True) -> None:
        self._verify = check_verify(verify)
        self._timeouts: dict[tuple[AttemptTimeouts, bool], Any] = {}

    def _timeout(self, t: AttemptTimeouts, *, stream: bool) -> Any:
        cached = self._timeouts.get((t, stream))
        if cached is None:
            import aiohttp

            def floor(v: float | None) -> float | None:
                return None if v is None else max(v, _MIN_TIMEOUT)

            if stream:
                cached = aiohttp.ClientTimeout(
                    total=floor(t.total), sock_connect=floor(t.connect), sock_read=floor(t.read)
                )
            else:
                # A whole response arrives right after its head, so the wait for the head and
                # the whole exchange end together: one deadline, the smaller, counted from the
                # start (connect time included; on a kept-alive connection that is ~0). aiohttp
                # arms a timer per limit and re-arms the read one per chunk: three timers a
                # request, ~10 us of CPU, where one does.
                limits = [v for v in (t.total, t.read) if v is not None]
                cached = aiohttp.ClientTimeout(
                    total=floor(min(limits)) if limits else None, sock_connect=floor(t.connect)
                )
            if len(self._timeouts) < 64:  # deadline-capped totals vary; keep the common ones
                self._timeouts[(t, stream)] = cached
        return cached

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read the whole response (same-origin 307/308 followed)."""
        url = request.url
        try:
            session = _SESSIONS.get(self._verify)
            for _ in range(MAX_REDIRECTS + 1):
                async with session.request(
                    request.method,
                    url,
                    data=request.body or None,
                    headers=request.headers,
                    timeout=self._timeout(request.timeouts, stream=False),
                    allow_redirects=False,
                ) as resp:
                    data = await resp.read()
                    if resp.status in (307, 308):
                        url = redirect_target(url, resp.status, resp.headers.get("Location"))
                        continue
                    return HTTPResponse(resp.status, _lower(resp.headers), data)
            raise TransportError(f"more than {MAX_REDIRECTS} redirects")
        except Exception as exc:
            raise _translate(exc, request.url) from exc

    async def stream(self, request: HTTPRequest) -> AsyncGenerator[HTTPResponse | bytes, None]:
        """POST and yield the response head (body empty), then raw body chunks.

        A non-2xx response yields one :class:`HTTPResponse` with its whole body and stops.
        """
        try:
            session = _SESSIONS.get(self._verify)
            async with session.request(
                request.method,
                request.url,
                data=request.body or None,
                headers={**request.headers, "Accept": "text/event-stream"},
                timeout=self._timeout(request.timeouts, stream=True),
                allow_redirects=False,
            ) as resp:
                if resp.status >= 300:
                    yield HTTPResponse(resp.status, _lower(resp.headers), await resp.read())
                    return
                yield HTTPResponse(resp.status, _lower(resp.headers), b"")
                async for chunk in resp.content.iter_any():
                    yield chunk
        except Exception as exc:
            raise _translate(exc, request.url) from exc

    def __repr__(self) -> str:
        return f"AiohttpTransport(verify={self._verify!r})"


def _translate(exc: BaseException, url: str) -> TGIError:
    """Map an aiohttp, asyncio or OS exception to the error tree: the one place that does."""
    import aiohttp

    if isinstance(exc, TGIError):
        return exc
    where = _without_path(url)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return TGITimeoutError(f"timed out talking to {where}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"cannot connect to {where}: {exc.os_error}")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return TransportError(
            f"HTTP transport error talking to {where}: {type(exc).__name__}: {exc}"
        )
    return TransportError(f"unexpected error talking to {where}: {type(exc).__name__}")


def _without_path(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def default_transport(verify: bool | str = True) -> AsyncTransport:
    """The transport a client uses when none is passed.

    :class:`~tgispy.tgi.FastTransport` (tgispy's own HTTP/1.1 over httptools' parser, 2x
    aiohttp's requests per second of CPU here) when ``tgispy[speed]`` is installed, else
    :class:`AiohttpTransport`. ``TGISPY_TRANSPORT=aiohttp`` (or ``fast``) chooses explicitly.

    Raises:
        ConfigError: ``TGISPY_TRANSPORT`` holds another value.
        ImportError: ``TGISPY_TRANSPORT=fast`` without httptools (names the extra to install).
    """
    import importlib.util
    import os

    choice = os.environ.get(TRANSPORT_ENV, "").strip().lower()
    if choice not in ("", "aiohttp", "fast"):
        raise ConfigError(
            f"{TRANSPORT_ENV}={choice!r}: use 'aiohttp' or 'fast' (or leave it unset: 'fast' "
            "when tgispy[speed] is installed)"
        )
    if choice == "fast" or (not choice and importlib.util.find_spec("httptools") is not None):
        from tgispy.tgi._fasthttp import FastTransport

        return FastTransport(verify=verify)
    return AiohttpTransport(verify=verify)


async def close_sessions() -> None:
    """Close the current loop's shared sessions (they are also closed with the loop)."""
    await _SESSIONS.close_current()


on_loop_shutdown(close_sessions)
