"""Test doubles for users' own tests: an in-process transport and a scripted TGI server.

:class:`MockTransport` answers requests in-process (no sockets, no threads), in the spirit of
httpx's ``MockTransport``: pass it as ``HFClientTGI(..., transport=MockTransport(handler))`` and
every layer above the socket (routing, retries, parsing, cache, history) runs for real.
:class:`ScriptedTGI` is a real HTTP server (aiohttp, in a background thread) answering the same
scripts, for end-to-end tests. Both take :class:`Reply` objects built by its helpers
(:meth:`Reply.generate`, :meth:`Reply.stream`, :meth:`Reply.chat`, :meth:`Reply.chat_stream`,
:meth:`Reply.error`, :meth:`Reply.refuse_connection`).

Example:
    >>> import tgispy as dspy
    >>> from tgispy.testing import MockTransport, Reply
    >>> lm = dspy.HFClientTGI("m", 8080, "http://tgi.test", cache=False,
    ...                       transport=MockTransport([Reply.generate("Paris")]))
    >>> lm("Capital of France?")
    ['Paris']
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tgispy.errors import ConnectError, TGITimeoutError, TransportError
from tgispy.tgi._protocol import info_document
from tgispy.tgi._transport import HTTPRequest, HTTPResponse

if TYPE_CHECKING:
    from aiohttp import web

from tgispy._settings import isolated_settings

__all__ = ["MockTransport", "Recorded", "Reply", "ScriptedTGI", "isolated_settings"]

#: The ``/info`` the doubles report: a TGI 3.3.7 server (its Cargo version) with the launcher's
#: defaults and a 4096-token context (fields and defaults: :mod:`tgispy.tgi._protocol`).
DEFAULT_INFO: dict[str, Any] = info_document(
    model_id="scripted/model", max_input_tokens=4095, max_total_tokens=4096, version="3.3.6-dev0"
)


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body (bytes, or JSON-able) and headers.

    ``sse`` replies are sent as ``text/event-stream`` with one ``data:`` line per item (a
    ``bytes`` item is sent as is); ``drop`` closes the connection after the head (a transport
    failure); ``refuse`` refuses the connection (:class:`MockTransport` only); ``delay`` waits
    first.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    sse: tuple[Any, ...] | None = None
    delay: float = 0.0
    drop: bool = False
    refuse: bool = False

    @staticmethod
    def refuse_connection() -> Reply:
        """A refused connection (nothing listens): :class:`~tgispy.errors.ConnectError`."""
        return Reply(refuse=True)

    @staticmethod
    def stream(
        tokens: Sequence[str],
        *,
        finish_reason: str = "length",
        final_token: str | None = None,
        prompt_tokens: int = 3,
    ) -> Reply:
        """A ``/generate_stream`` success as TGI sends it: one event per token; the last event
        carries the last token (or ``final_token``, e.g. a special ``</s>``) with
        ``generated_text`` and ``details``."""
        texts = list(tokens) + ([final_token] if final_token is not None else [])
        if not texts:
            raise ValueError("a TGI stream has at least one token")
        events: list[Any] = []
        for i, text in enumerate(texts):
            last = i == len(texts) - 1
            special = last and final_token is not None
            events.append(
                {
                    "index": i + 1,
                    "token": {"id": i, "text": text, "logprob": -0.1, "special": special},
                    "generated_text": "".join(tokens) if last else None,
                    "details": (
                        {
                            "finish_reason": finish_reason,
                            "generated_tokens": len(texts),
                            "seed": None,
                            "input_length": prompt_tokens,
                        }
                        if last
                        else None
                    ),
                }
            )
        return Reply(200, sse=tuple(events))

    @staticmethod
    def chat(
        text: str,
        *,
        finish_reason: str = "stop",
        prompt_tokens: int = 3,
        completion_tokens: int = 1,
    ) -> Reply:
        """A ``/v1/chat/completions`` success."""
        return Reply(
            200,
            {
                "object": "chat.completion",
                "id": "",
                "created": 0,
                "model": "tgi",
                "system_fingerprint": "3.3.6-native",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    @staticmethod
    def chat_stream(pieces: Sequence[str], *, finish_reason: str = "stop") -> Reply:
        """A streamed ``/v1/chat/completions`` answer: one chunk per piece, then ``[DONE]``."""
        chunks: list[Any] = [
            {
                "object": "chat.completion.chunk",
                "id": "",
                "created": 0,
                "model": "tgi",
                "system_fingerprint": "3.3.6-native",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": piece},
                        "logprobs": None,
                        "finish_reason": finish_reason if i == len(pieces) - 1 else None,
                    }
                ],
            }
            for i, piece in enumerate(pieces)
        ]
        chunks.append("[DONE]")
        return Reply(200, sse=tuple(chunks))

    @staticmethod
    def generate(
        text: str,
        *,
        finish_reason: str = "length",
        generated_tokens: int = 1,
        best_of: Iterable[str] = (),
        details: bool = False,
        prompt_tokens: int = 3,
    ) -> Reply:
        """A ``/generate`` success, shaped as TGI 3.x sends it."""
        body: dict[str, Any] = {"generated_text": text}
        extra = list(best_of)
        if details or extra:
            body["details"] = {
                "finish_reason": finish_reason,
                "generated_tokens": generated_tokens,
                "seed": None,
                "prefill": [],
                "tokens": [],
            }
            if extra:
                body["details"]["best_of_sequences"] = [
                    {
                        "generated_text": t,
                        "finish_reason": finish_reason,
                        "generated_tokens": generated_tokens,
                        "seed": 1,
                        "prefill": [],
                        "tokens": [],
                    }
                    for t in extra
                ]
        headers = {
            "x-prompt-tokens": str(prompt_tokens),
            "x-generated-tokens": str(generated_tokens),
        }
        return Reply(200, body, headers)

    @staticmethod
    def error(status: int, message: str, error_type: str, **headers: str) -> Reply:
        """A TGI error body ``{"error", "error_type"}``."""
        return Reply(status, {"error": message, "error_type": error_type}, headers)


@dataclass(frozen=True)
class Recorded:
    """A request the server (or :class:`MockTransport`) received.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        path: the route (``/generate``).
        headers: the request headers.
        json: the decoded JSON body (``None`` when empty; the text when not JSON).
        replica: the replica's base URL (``scheme://host:port``).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    replica: str = ""


Handler = Callable[[Recorded], Reply]
AsyncHandler = Callable[[Recorded], "Reply | Awaitable[Reply]"]


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _sse_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    data = item if isinstance(item, str) else json.dumps(item)
    return f"data: {data}\n\n".encode()


def _body_bytes(body: Any) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    return json.dumps(body).encode(), "application/json"


class MockTransport:
    """An in-process :class:`~tgispy.tgi.AsyncTransport`: a handler answers every request.

    Args:
        script: replies used in order (the last one repeats), or a function from the received
            :class:`Recorded` request to a :class:`Reply` (or an awaitable of one). Requests of
            every replica come here; ``Recorded.replica`` says which.
        info: the ``/info`` document (``None``: ``/info`` answers 404).
        health_status: status of ``GET /health``.
        all_routes: send ``GET /info`` and ``GET /health`` to the handler too (to simulate
            replicas that die or refuse), instead of answering them from ``info`` and
            ``health_status``.
        sleep: how a reply's ``delay`` is waited (inject a fake clock's sleep in simulations).
            A delay longer than the request's total timeout raises
            :class:`~tgispy.errors.TGITimeoutError` after that timeout, as a real transport does.

    Example:
        >>> transport = MockTransport(lambda req: Reply.generate(req.json["inputs"].upper()))
        >>> import tgispy as dspy
        >>> lm = dspy.HFClientTGI("m", None, ["http://a.test", "http://b.test"], cache=False,
        ...                       transport=transport)
        >>> lm("hi")
        ['HI']
        >>> [r.path for r in transport.requests]
        ['/generate']
    """

    def __init__(
        self,
        script: Iterable[Reply] | AsyncHandler = (),
        *,
        info: Mapping[str, Any] | None = DEFAULT_INFO,
        health_status: int = 200,
        all_routes: bool = False,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if callable(script):
            self._handler: AsyncHandler | None = script
            self._replies: list[Reply] = []
        else:
            self._handler = None
            self._replies = list(script)
        self.info = dict(info) if info is not None else None
        self.health_status = health_status
        self.all_routes = all_routes
        self.requests: list[Recorded] = []
        self._sleep = sleep
        self._next = 0

    async def _reply(self, request: HTTPRequest) -> Reply:
        parts = urlsplit(request.url)
        replica = f"{parts.scheme}://{parts.netloc}"
        rec = Recorded(
            request.method, parts.path, dict(request.headers), _decode(request.body), replica
        )
        if request.method == "GET" and not self.all_routes:
            if parts.path == "/info":
                return Reply(200, self.info) if self.info is not None else Reply(404, b"not found")
            if parts.path == "/health":
                return Reply(self.health_status, b"")
        self.requests.append(rec)
        if self._handler is not None:
            reply = self._handler(rec)
            if inspect.isawaitable(reply):
                reply = await reply
            assert isinstance(reply, Reply), f"the handler must return a Reply, got {reply!r}"
        elif not self._replies:
            reply = Reply.error(500, "MockTransport has no scripted reply", "scripted")
        else:
            reply = self._replies[min(self._next, len(self._replies) - 1)]
            self._next += 1
        limit = request.timeouts.total
        if limit is not None and reply.delay > limit:
            # as a real transport would: the attempt's total timeout cuts a slow reply
            await self._sleep(limit)
            raise TGITimeoutError(f"timed out talking to {replica} (mock)")
        if reply.delay:
            await self._sleep(reply.delay)
        if reply.refuse:
            raise ConnectError(f"cannot connect to {replica}: connection refused (mock)")
        if reply.drop:
            raise TransportError(f"HTTP transport error talking to {replica}: server disconnected")
        return reply

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Answer ``request`` from the script."""
        reply = await self._reply(request)
        if reply.sse is not None:
            body = b"".join(_sse_bytes(i) for i in reply.sse)
            headers = {"content-type": "text/event-stream"}
        else:
            body, ctype = _body_bytes(reply.body)
            headers = {"content-type": ctype}
        headers.update({k.lower(): v for k, v in reply.headers.items()})
        return HTTPResponse(reply.status, headers, body)

    async def stream(self, request: HTTPRequest) -> AsyncGenerator[HTTPResponse | bytes, None]:
        """Answer a streaming ``request``: the head, then one chunk per SSE item."""
        reply = await self._reply(request)
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if reply.status >= 300 or reply.sse is None:
            body, _ = _body_bytes(reply.body)
            yield HTTPResponse(reply.status, headers, body)
            return
        yield HTTPResponse(reply.status, {"content-type": "text/event-stream", **headers}, b"")
        for item in reply.sse:
            yield _sse_bytes(item)

    def __repr__(self) -> str:
        return f"MockTransport({len(self.requests)} requests)"


class ScriptedTGI:
    """A TGI-speaking HTTP server on 127.0.0.1 that answers from a script.

    Args:
        script: replies for the generation routes, used in order (the last one repeats), or a
            function from the received request to a reply.
        info: the ``/info`` document (``None`` makes ``/info`` answer 404, like a proxy might).
        health_status: status of ``GET /health``.
    """

    def __init__(
        self,
        script: Iterable[Reply] | Handler = (),
        *,
        info: Mapping[str, Any] | None = DEFAULT_INFO,
        health_status: int = 200,
    ) -> None:
        if callable(script):
            self._handler: Handler | None = script
            self._replies: list[Reply] = []
        else:
            self._handler = None
            self._replies = list(script)
        self.info = dict(info) if info is not None else None
        self.health_status = health_status
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_script(self, script: Iterable[Reply] | Handler) -> None:
        """Replace the script (e.g. to make a healthy replica start failing)."""
        with self._lock:
            if callable(script):
                self._handler, self._replies = script, []
            else:
                self._handler, self._replies = None, list(script)
            self._next = 0

    def _reply_for(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            if self._handler is not None:
                return self._handler(rec)
            if not self._replies:
                return Reply.error(500, "ScriptedTGI has no scripted reply", "scripted")
            reply = self._replies[min(self._next, len(self._replies) - 1)]
            self._next += 1
            return reply

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        raw = await request.read()
        rec = Recorded(request.method, request.path, dict(request.headers), _decode(raw), self.url)
        reply = self._reply_for(rec)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        if reply.sse is not None:
            resp = web.StreamResponse(
                status=reply.status,
                headers={"Content-Type": "text/event-stream", **reply.headers},
            )
            await resp.prepare(request)
            for item in reply.sse:
                await resp.write(_sse_bytes(item))
            await resp.write_eof()
            return resp
        data, ctype = _body_bytes(reply.body)
        return web.Response(
            status=reply.status, body=data, headers={"Content-Type": ctype, **reply.headers}
        )

    async def _info(self, request: web.Request) -> web.Response:
        from aiohttp import web

        if self.info is None:
            return web.Response(status=404, text="not found")
        return web.json_response(self.info)

    async def _health(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(status=self.health_status)

    async def _start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/info", self._info)
        app.router.add_get("/health", self._health)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    def start(self) -> ScriptedTGI:
        """Start serving in a background thread; returns self."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start())
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="scripted-tgi", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("ScriptedTGI did not start within 10 s")
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        runner = self._runner
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> ScriptedTGI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
