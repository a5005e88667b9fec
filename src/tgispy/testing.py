"""Test doubles for users' own tests: a scripted TGI server on 127.0.0.1.

:class:`ScriptedTGI` is a real HTTP server (aiohttp, in a background thread) that answers TGI's
routes from a script, so code under test exercises the real client, transport and parsers.

Example:
    >>> from tgispy.testing import ScriptedTGI, Reply
    >>> with ScriptedTGI([Reply.generate("Paris")]) as server:  # doctest: +SKIP
    ...     lm = HFClientTGI(model="m", port=server.port, url="http://127.0.0.1", cache=False)
    ...     lm("Capital of France?")
    ['Paris']
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

from tgispy._settings import isolated_settings

__all__ = ["Recorded", "Reply", "ScriptedTGI", "isolated_settings"]

DEFAULT_INFO: dict[str, Any] = {
    "model_id": "scripted/model",
    "model_sha": None,
    "model_pipeline_tag": "text-generation",
    "max_concurrent_requests": 128,
    "max_best_of": 2,
    "max_stop_sequences": 4,
    "max_input_tokens": 4095,
    "max_total_tokens": 4096,
    "validation_workers": 2,
    "max_client_batch_size": 4,
    "router": "text-generation-router",
    "version": "3.3.6-dev0",
    "sha": None,
    "docker_label": None,
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body (bytes, or JSON-able) and headers.

    ``sse`` replies are sent as ``text/event-stream`` with one ``data:`` line per item; ``drop``
    closes the connection after the head (a transport failure); ``delay`` waits first.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    sse: tuple[Any, ...] | None = None
    delay: float = 0.0
    drop: bool = False

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
    """A request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any


Handler = Callable[[Recorded], Reply]


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
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        rec = Recorded(request.method, request.path, dict(request.headers), payload)
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
                data = item if isinstance(item, (str, bytes)) else json.dumps(item)
                chunk = data if isinstance(data, bytes) else f"data: {data}\n\n".encode()
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        body = reply.body
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        ctype = "application/octet-stream" if isinstance(body, bytes) else "application/json"
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
