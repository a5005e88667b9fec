"""Running the server: :func:`serve` (until cancelled or signalled) and the CLI :func:`main`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from tgispy.errors import ConfigError
from tgispy.server._app import FRONT_KEY, GUARD_KEY, create_app
from tgispy.server._config import ServerConfig, SimConfig, is_loopback
from tgispy.server._guard import AcceptErrorLog, GuardedSite
from tgispy.server._threads import auto_threads
from tgispy.tgi._protocol import LAUNCHER

__all__ = ["build_parser", "config_from_args", "main", "readiness_line", "serve"]

logger = logging.getLogger(__name__)

#: printed (flushed) on stdout once the server listens and the model is loaded
READY_PREFIX = "tgispy serve: listening on "


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def readiness_line(config: ServerConfig, url: str, description: str) -> str:
    """The line ``tgispy serve`` prints when ready (parsed by :class:`ServerProcess`).

    Example:
        >>> readiness_line(ServerConfig(backend="sim"), "http://127.0.0.1:8080", "sim")
        'tgispy serve: listening on http://127.0.0.1:8080 (backend=sim, model=sim)'
    """
    extra = ""
    if config.backend == "llama":  # the llama.cpp threads chosen (issue 20)
        chosen = config.threads
        extra = f", threads={chosen}" if chosen else f", threads={auto_threads()} (auto: cores - 1)"
    if not is_loopback(config.host):
        extra += ", WARNING: non-loopback address allowed by --allow-remote, no authentication"
    return f"{READY_PREFIX}{url} (backend={config.backend}, model={description}{extra})"


async def serve(config: ServerConfig, *, ready: Callable[[str], None] | None = None) -> None:
    """Serve TGI's protocol until cancelled, SIGINT or SIGTERM, then shut down cleanly.

    Listens first (``/health`` answers 503 while the model loads), then loads the model; once
    loaded, calls ``ready(url)`` (by default: prints the readiness line on stdout).

    Args:
        config: what to serve and where (``port=0`` picks a free port).
        ready: called with the base URL once the server is ready.

    Raises:
        RuntimeError, ImportError: the model could not be loaded.

    Example:
        >>> asyncio.run(serve(ServerConfig(backend="sim", port=8080)))  # doctest: +SKIP
        tgispy serve: listening on http://127.0.0.1:8080 (backend=sim, model=tgispy/sim (simulated))
    """
    app = create_app(config)
    front = app[FRONT_KEY]
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=2.0,
        keepalive_timeout=config.keepalive_timeout_s,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(AcceptErrorLog())
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    try:
        site = GuardedSite(runner, config.host, config.port, app[GUARD_KEY])
        await site.start()
        # port 0: the OS picked one; the runner knows which
        port = int(runner.addresses[0][1]) if runner.addresses else config.port
        url = _url(config.host, port)
        assert front.load_task is not None
        loaded: asyncio.Future[None] = asyncio.ensure_future(asyncio.shield(front.load_task))
        stopped: asyncio.Future[bool] = asyncio.ensure_future(stop.wait())
        pending: set[asyncio.Future[Any]] = {loaded, stopped}
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not loaded.done():
            loaded.cancel()
            return
        loaded.result()  # raises if the model failed to load
        if ready is not None:
            ready(url)
        else:
            print(readiness_line(config, url, front.backend.description), flush=True)
        await stop.wait()
        logger.info("shutting down")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        loop.set_exception_handler(previous_handler)


def build_parser(prog: str = "tgispy serve") -> argparse.ArgumentParser:
    """The ``tgispy serve`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve text-generation-inference's HTTP protocol over llama.cpp "
        "(SmolLM2-135M by default) or over a simulated engine.",
    )
    parser.add_argument("--model", help="GGUF file to serve (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--model-id", help="model id reported by /info")
    parser.add_argument("--backend", choices=("llama", "sim"), default="llama")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=LAUNCHER.port, help="port (0 = pick a free one)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the server has no authentication)",
    )
    parser.add_argument("--parallel", type=int, default=4, help="llama.cpp slots (batching)")
    parser.add_argument(
        "--threads", type=int, help="llama.cpp CPU threads (default: usable cores - 1)"
    )
    parser.add_argument("--ctx-size", type=int, default=2048, help="context per slot (tokens)")
    parser.add_argument(
        "--max-concurrent-requests", type=int, default=LAUNCHER.max_concurrent_requests
    )
    parser.add_argument("--max-best-of", type=int, default=LAUNCHER.max_best_of)
    parser.add_argument("--max-stop-sequences", type=int, default=LAUNCHER.max_stop_sequences)
    parser.add_argument("--max-top-n-tokens", type=int, default=LAUNCHER.max_top_n_tokens)
    parser.add_argument("--max-input-tokens", type=int)
    parser.add_argument("--max-total-tokens", type=int)
    parser.add_argument("--max-client-batch-size", type=int, default=LAUNCHER.max_client_batch_size)
    parser.add_argument("--payload-limit", type=int, default=LAUNCHER.payload_limit, help="bytes")
    parser.add_argument(
        "--tokenize-limit", type=int, help="largest /tokenize body in bytes (default: payload)"
    )
    parser.add_argument(
        "--tokenize-workers",
        type=int,
        default=LAUNCHER.validation_workers,
        help="/tokenize requests run at once",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help="open connections at once (default: the file-descriptor limit less a reserve)",
    )
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds to send a request head"
    )
    parser.add_argument(
        "--body-timeout", type=float, default=30.0, help="seconds to send a request body"
    )
    parser.add_argument(
        "--keepalive-timeout", type=float, default=75.0, help="seconds an idle connection lives"
    )
    parser.add_argument(
        "--no-prompt-cache", action="store_true", help="do not reuse KV cache across requests"
    )
    parser.add_argument(
        "--log-level", default="warning", choices=("debug", "info", "warning", "error")
    )
    sim = parser.add_argument_group("simulated backend (--backend sim)")
    sim.add_argument(
        "--sim-text",
        action="append",
        metavar="TEXT",
        help="scripted completion; repeat to cycle through several",
    )
    sim.add_argument("--sim-echo", action="store_true", help="answer with the prompt itself")
    sim.add_argument("--sim-token-latency", type=float, default=0.0, metavar="SECONDS")
    sim.add_argument("--sim-prefill-latency", type=float, default=0.0, metavar="SECONDS")
    sim.add_argument("--sim-capacity", type=int, default=64, help="concurrent generations")
    sim.add_argument(
        "--sim-error-rate",
        action="append",
        default=[],
        metavar="STATUS=RATE",
        help="answer STATUS with probability RATE, e.g. 429=0.2 (repeatable)",
    )
    sim.add_argument("--sim-malformed-rate", type=float, default=0.0)
    sim.add_argument("--sim-truncated-rate", type=float, default=0.0)
    sim.add_argument("--sim-drop-rate", type=float, default=0.0)
    sim.add_argument("--sim-hang-rate", type=float, default=0.0)
    sim.add_argument("--sim-hang-seconds", type=float, default=3600.0)
    sim.add_argument("--sim-seed", type=int, default=0)
    sim.add_argument("--sim-model-id", default="tgispy/sim")
    return parser


def _error_rates(items: Sequence[str]) -> dict[int, float]:
    rates: dict[int, float] = {}
    for item in items:
        status, sep, rate = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            rates[int(status)] = float(rate)
        except ValueError as exc:
            raise ConfigError(
                f"--sim-error-rate expects STATUS=RATE such as 429=0.2, got {item!r}"
            ) from exc
    return rates


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A :class:`ServerConfig` from parsed ``tgispy serve`` arguments.

    Raises:
        ConfigError: inconsistent arguments (the message names the fix).
    """
    sim = SimConfig(
        texts=tuple(args.sim_text) if args.sim_text else SimConfig.texts,
        echo=args.sim_echo,
        token_latency_s=args.sim_token_latency,
        prefill_latency_s=args.sim_prefill_latency,
        capacity=args.sim_capacity,
        error_rates=_error_rates(args.sim_error_rate),
        malformed_rate=args.sim_malformed_rate,
        truncated_rate=args.sim_truncated_rate,
        drop_rate=args.sim_drop_rate,
        hang_rate=args.sim_hang_rate,
        hang_s=args.sim_hang_seconds,
        seed=args.sim_seed,
        model_id=args.sim_model_id,
    )
    return ServerConfig(
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        backend=args.backend,
        model=args.model,
        model_id=args.model_id,
        parallel=args.parallel,
        threads=args.threads,
        ctx_size=args.ctx_size,
        max_concurrent_requests=args.max_concurrent_requests,
        max_best_of=args.max_best_of,
        max_stop_sequences=args.max_stop_sequences,
        max_top_n_tokens=args.max_top_n_tokens,
        max_input_tokens=args.max_input_tokens,
        max_total_tokens=args.max_total_tokens,
        max_client_batch_size=args.max_client_batch_size,
        payload_limit=args.payload_limit,
        tokenize_limit=args.tokenize_limit,
        tokenize_workers=args.tokenize_workers,
        max_connections=args.max_connections,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keepalive_timeout_s=args.keepalive_timeout,
        prompt_cache=not args.no_prompt_cache,
        sim=sim,
    )


#: glibc's ``mallopt`` parameter for the number of malloc arenas
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process (a no-op elsewhere); returns whether it did.

    glibc gives each thread that allocates its own arena and keeps what is freed there: every
    worker thread that decoded a 2 MB body left tens of MB resident for good (``/tokenize`` grew
    the server by ~60 MB per request over a few requests). Two arenas keep that bounded, as
    ``MALLOC_ARENA_MAX=2`` does for other Python servers.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    """``tgispy serve``: parse ``argv`` (without the program name), serve until signalled.

    Returns:
        The exit status: 0 after a clean shutdown, 1 when the model fails to load, 2 for bad
        arguments.

    Example:
        >>> main(["--backend", "sim", "--port", "0"])  # doctest: +SKIP
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0, usage errors 2
        return int(exc.code or 0)
    limit_malloc_arenas()
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = config_from_args(args)
        if config.backend == "llama":
            config.model_path()  # fail fast, with the install hint, before binding anything
    except (ConfigError, ImportError) as exc:
        print(f"tgispy serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(
            f"tgispy serve: error: cannot listen on {config.host}:{config.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:
        print(f"tgispy serve: error: {exc}", file=sys.stderr)
        return 1
    return 0
