"""``tgispy serve-rm CORPUS --port P``: a BM25 index behind ColBERTv2's HTTP search protocol.

Code written against a ColBERTv2 URL runs unchanged against it::

    tgispy serve-rm passages.jsonl --port 8893
    dspy.configure(rm=dspy.ColBERTv2(url="http://127.0.0.1", port=8893))

Protocol (ColBERTv2's server, as DSPy 2.4's client uses it): ``GET <any path>?query=...&k=...``
or ``POST <any path>`` with ``{"query": ..., "k": ...}``; the answer is ``{"query": ..., "topk":
[{"text", "long_text", "pid", "rank", "score", "prob", ...}], "latency": ms}``. ``k`` is 1 to 100;
a bad request is a 400 with ``{"error": ...}``. ``GET /health`` answers ``{"status": "ok"}``.
Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tgispy.errors import ConfigError
from tgispy.retrieve._bm25 import BM25

__all__ = ["READY_PREFIX", "build_parser", "create_app", "main", "serve_rm"]

#: printed (flushed) on stdout once the server listens
READY_PREFIX = "tgispy serve-rm: listening on "
_MAX_K = 100
_RM_KEY = web.AppKey("rm", BM25)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _parse_k(raw: Any) -> int:
    try:
        k = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"k must be an integer, got {raw!r}") from None
    if not 1 <= k <= _MAX_K:
        raise ValueError(f"k must be between 1 and {_MAX_K}, got {k}")
    return k


async def _search(request: web.Request) -> web.Response:
    started = time.perf_counter()
    if request.method == "POST":
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, 'the body must be JSON: {"query": ..., "k": ...}')
        if not isinstance(body, dict):
            return _error(400, 'the body must be a JSON object: {"query": ..., "k": ...}')
        query, raw_k = body.get("query"), body.get("k", 10)
    else:
        query, raw_k = request.query.get("query"), request.query.get("k", "10")
    if not isinstance(query, str) or not query.strip():
        return _error(400, "query is required (a non-empty string)")
    try:
        k = _parse_k(raw_k)
    except ValueError as exc:
        return _error(400, str(exc))
    rm = request.app[_RM_KEY]
    # Scoring is CPU work: keep the event loop free for other requests.
    passages = await asyncio.to_thread(rm, query, k)
    topk = [dict(p.items()) for p in passages]
    latency = (time.perf_counter() - started) * 1000
    return web.json_response(
        {"query": query, "topk": topk, "latency": latency},
        dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
    )


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "passages": len(request.app[_RM_KEY])})


def create_app(rm: BM25) -> web.Application:
    """The aiohttp application serving ``rm`` over ColBERTv2's protocol."""
    app = web.Application(client_max_size=64 * 1024)
    app[_RM_KEY] = rm
    app.router.add_get("/health", _health)
    app.router.add_route("GET", "/{tail:.*}", _search)
    app.router.add_route("POST", "/{tail:.*}", _search)
    return app


async def serve_rm(rm: BM25, host: str = "127.0.0.1", port: int = 8893) -> None:
    """Serve ``rm`` until cancelled (or SIGINT / SIGTERM); print the readiness line."""
    runner = web.AppRunner(create_app(rm), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        bound = server.sockets[0].getsockname()[1]
    print(f"{READY_PREFIX}http://{host}:{bound} ({len(rm)} passages)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on every platform.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tgispy serve-rm",
        description="Serve a passage corpus (BM25) over ColBERTv2's HTTP search protocol.",
    )
    parser.add_argument("corpus", help="passages: .jsonl, .json, .csv or .tsv")
    parser.add_argument("--port", type=int, default=8893)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--index", default=None, help="save / reuse the BM25 index at this path")
    parser.add_argument("--k1", type=float, default=1.5)
    parser.add_argument("--b", type=float, default=0.75)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``tgispy serve-rm``: parse ``argv`` (without the program name), serve until signalled.

    Returns:
        0 after a clean shutdown, 2 for bad arguments or a bad corpus file.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        rm = BM25(args.corpus, k1=args.k1, b=args.b, index_path=args.index)
    except ConfigError as exc:
        print(f"tgispy serve-rm: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_rm(rm, args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"tgispy serve-rm: error: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
