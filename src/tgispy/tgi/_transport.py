"""The HTTP shell: aiohttp sessions, one request attempt, and exception translation.

This module is the only place that touches aiohttp. It sends one attempt to one replica and returns
bytes (or an async iterator of SSE payloads); deciding where and whether to retry is the router's
job, and parsing is the pure protocol modules' job.

One ``aiohttp.ClientSession`` (and so one keep-alive connection pool) is shared by every client on
an event loop. It is closed when the loop shuts down its async generators (``asyncio.run`` and
pytest-asyncio do), so callers never have to remember to close it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tgispy._sync import on_loop_shutdown
from tgispy.errors import (
    ConnectError,
    TGIError,
    TGITimeoutError,
    TransportError,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HTTPResponse", "Transport", "translate_exception"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HTTPResponse:
    """A complete response: status, headers (lower-case names) and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def translate_exception(exc: BaseException, replica: str) -> TGIError:
    """Map a foreign (aiohttp, asyncio, OS) exception to our error tree: the one place we do so."""
    import aiohttp

    if isinstance(exc, TGIError):
        if exc.replica is None:
            exc.replica = replica
        return exc
    err: TGIError
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        err = TGITimeoutError(f"timed out talking to {replica}", replica=replica)
    elif isinstance(exc, aiohttp.ClientConnectorError):
        err = ConnectError(f"cannot connect to {replica}: {exc.os_error}", replica=replica)
    elif isinstance(exc, (aiohttp.ClientError, OSError)):
        err = TransportError(
            f"HTTP transport error talking to {replica}: {type(exc).__name__}: {exc}",
            replica=replica,
        )
    else:
        err = TransportError(f"unexpected error talking to {replica}: {exc!r}", replica=replica)
    err.__cause__ = exc
    return err


class _LoopSessions:
    """One aiohttp session per (event loop, TLS verification setting), closed with the loop."""

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

        async def guard() -> AsyncIterator[None]:
            try:
                yield None
            finally:
                await self.close_loop(loop_id)

        gen = guard()
        self._guards[loop_id] = gen
        loop.create_task(_start_guard(gen))

    async def close_loop(self, loop_id: int) -> None:
        self._guards.pop(loop_id, None)
        for key in [k for k in self._sessions if k[0] == loop_id]:
            session = self._sessions.pop(key)
            await session.close()

    async def close_current(self) -> None:
        await self.close_loop(id(asyncio.get_running_loop()))


async def _start_guard(gen: AsyncIterator[None]) -> None:
    await gen.__anext__()


_SESSIONS = _LoopSessions()


class Transport:
    """Sends single attempts to replicas over shared keep-alive sessions.

    Args:
        headers: extra request headers (e.g. ``Authorization``); never logged.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    """

    def __init__(self, *, headers: Mapping[str, str] | None = None, verify: bool | str = True):
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._verify = verify
        self._secrets = _secret_values(self._headers)
        self._timeouts: dict[tuple[float | None, float | None, float | None], Any] = {}

    def _timeout(self, connect: float | None, read: float | None, total: float | None) -> Any:
        key = (connect, read, total)
        cached = self._timeouts.get(key)
        if cached is None:
            import aiohttp

            cached = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
            if len(self._timeouts) < 64:  # deadline-capped totals vary; keep the common ones
                self._timeouts[key] = cached
        return cached

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        connect: float | None = None,
        read: float | None = None,
        total: float | None = None,
    ) -> HTTPResponse:
        """POST ``body`` to ``url`` and read the whole response."""
        session = _SESSIONS.get(self._verify)
        async with session.post(
            url,
            data=body,
            headers=self._headers,
            timeout=self._timeout(connect, read, total),
        ) as resp:
            data = await resp.read()
            return HTTPResponse(resp.status, _lower(resp.headers), self._scrub(resp.status, data))

    async def get(self, url: str, *, total: float | None = 5.0) -> HTTPResponse:
        session = _SESSIONS.get(self._verify)
        async with session.get(
            url, headers=self._headers, timeout=self._timeout(total, total, total)
        ) as resp:
            data = await resp.read()
            return HTTPResponse(resp.status, _lower(resp.headers), self._scrub(resp.status, data))

    async def stream(
        self,
        url: str,
        body: bytes,
        *,
        connect: float | None = None,
        read: float | None = None,
        total: float | None = None,
    ) -> AsyncIterator[HTTPResponse | bytes]:
        """POST and yield first the response head (body empty), then raw body chunks.

        A non-2xx response yields one :class:`HTTPResponse` carrying the whole body and stops.
        """
        session = _SESSIONS.get(self._verify)
        async with session.post(
            url,
            data=body,
            headers={**self._headers, "Accept": "text/event-stream"},
            timeout=self._timeout(connect, read, total),
        ) as resp:
            if resp.status >= 300:
                data = self._scrub(resp.status, await resp.read())
                yield HTTPResponse(resp.status, _lower(resp.headers), data)
                return
            yield HTTPResponse(resp.status, _lower(resp.headers), b"")
            async for chunk in resp.content.iter_any():
                yield chunk

    def _scrub(self, status: int, body: bytes) -> bytes:
        """An error body with our own credentials cut out.

        Error bodies become error messages (and so logs); a proxy that echoes the request's
        ``Authorization`` header in its 401 page must not put the token there.
        """
        if status < 300 or not self._secrets:
            return body
        for secret in self._secrets:
            body = body.replace(secret, b"[redacted]")
        return body

    def __repr__(self) -> str:
        # Header values may hold secrets: show names only.
        return f"Transport(headers={sorted(self._headers)}, verify={self._verify!r})"


#: request headers whose values are credentials
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
)


def _secret_values(headers: Mapping[str, str]) -> tuple[bytes, ...]:
    """The credential strings in ``headers``: each value, and the token after its scheme
    (``Bearer <token>``), and for ``Basic`` the decoded ``user:password`` and password."""
    import base64
    import binascii

    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() not in _SECRET_HEADERS:
            continue
        found.add(value)
        scheme, _, token = value.partition(" ")
        if token:
            found.add(token.strip())
        if scheme.lower() == "basic" and token:
            try:
                pair = base64.b64decode(token.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue
            found.add(pair)
            found.add(pair.partition(":")[2])
    # longest first, so a value is cut whole before its parts; short strings are not secrets
    return tuple(v.encode() for v in sorted(found, key=len, reverse=True) if len(v) >= 8)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def close_sessions() -> None:
    """Close the current loop's shared sessions (they are also closed with the loop)."""
    await _SESSIONS.close_current()


on_loop_shutdown(close_sessions)
