"""Benchmark ``tgispy serve``: engine vs HTTP throughput, and the sim backend's request rate.

Run: ``.venv/bin/python bench/server.py`` (about a minute on 2 cores).

1. *Engine*: llama.cpp through xllamacpp in this process, no HTTP: greedy requests with exactly
   the parameters the server sends (logprobs on), 1, 4 and 8 at a time.
2. *HTTP*: the same requests to ``tgispy serve`` (a subprocess) over ``/generate`` and
   ``/generate_stream``, 1, 4 and 8 at a time.
3. *Sim*: requests per second of the simulated backend's HTTP path (no latency configured).

Throughput is generated tokens / wall-clock seconds. "single" is the mean per-request rate of
one request at a time; "aggregate" counts all requests in flight together.

``--json-out FILE`` writes report rows for run_all.py; ``--quick`` runs one round, 2 single
requests and 1,000 sim requests unless those are given.

usage: python bench/server.py [--rounds 3] [--single-requests 4] [--sim-requests 3000]
       [--max-new-tokens 64] [--skip-model] [--quick] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from _common import bench_row, progress, write_rows

from tgispy.server import ServerConfig, start_server
from tgispy.server._llama import LlamaBackend, _import_xllamacpp
from tgispy.server._types import EngineRequest, Sampling

PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a steam engine works.",
    "Describe a walk through Paris on a rainy day.",
    "List the steps to plant a vegetable garden and explain each.",
    "Tell me about the history of the printing press.",
    "Write a letter to a friend about your summer holidays.",
    "Explain why the sky is blue to a ten-year-old.",
    "Describe the life cycle of a butterfly.",
]
LEVELS = (1, 4, 8)


@dataclass
class Run:
    tokens: int
    seconds: float
    per_request: list[float]

    @property
    def aggregate(self) -> float:
        return self.tokens / self.seconds

    @property
    def single(self) -> float:
        return statistics.mean(self.per_request)


def _config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(parallel=max(LEVELS), threads=args.threads, ctx_size=args.ctx_size)


class Engine:
    """llama.cpp through xllamacpp in this process: no HTTP, no event loop."""

    def __init__(self, args: argparse.Namespace, socket_dir: str) -> None:
        xllamacpp = _import_xllamacpp()
        self.backend = LlamaBackend(_config(args))
        self.server = xllamacpp.Server(self.backend._params(xllamacpp, f"{socket_dir}/llama.sock"))
        self.max_new_tokens = args.max_new_tokens

    def close(self) -> None:
        """Free the model (joins llama.cpp's threads)."""
        del self.server

    def one(self, prompt: str, out: list[tuple[int, float]]) -> None:
        request = EngineRequest(prompt, self.max_new_tokens, Sampling())
        payload = self.backend._payload(request)  # exactly what the server sends, logprobs on
        payload["stream"] = False
        started = time.perf_counter()
        result = self.server.handle_completions(payload)
        out.append((int(result["usage"]["completion_tokens"]), time.perf_counter() - started))

    def run(self, level: int, single_requests: int) -> Run:
        results: list[tuple[int, float]] = []
        started = time.perf_counter()
        if level == 1:
            for prompt in PROMPTS[:single_requests]:
                self.one(prompt, results)
        else:
            threads = [
                threading.Thread(target=self.one, args=(p, results)) for p in PROMPTS[:level]
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return _run(results, time.perf_counter() - started)


def _run(results: list[tuple[int, float]], wall: float) -> Run:
    return Run(
        tokens=sum(n for n, _ in results), seconds=wall, per_request=[n / s for n, s in results]
    )


async def _http_one(
    session: aiohttp.ClientSession, url: str, prompt: str, max_new: int, stream: bool
) -> tuple[int, float]:
    body = {"inputs": prompt, "parameters": {"max_new_tokens": max_new, "details": True}}
    started = time.perf_counter()
    if stream:
        count = 0
        async with session.post(f"{url}/generate_stream", json=body) as resp:
            async for line in resp.content:
                if line.startswith(b"data: "):
                    count += 1
        return count, time.perf_counter() - started
    async with session.post(f"{url}/generate", json=body) as resp:
        data = await resp.json()
    return int(data["details"]["generated_tokens"]), time.perf_counter() - started


async def bench_http(
    session: aiohttp.ClientSession, url: str, level: int, args: argparse.Namespace, stream: bool
) -> Run:
    """The same requests as :meth:`Engine.run`, over HTTP to ``tgispy serve``."""
    started = time.perf_counter()
    max_new = args.max_new_tokens
    if level == 1:
        results = [
            await _http_one(session, url, p, max_new, stream)
            for p in PROMPTS[: args.single_requests]
        ]
    else:
        jobs = (_http_one(session, url, p, max_new, stream) for p in PROMPTS[:level])
        results = list(await asyncio.gather(*jobs))
    return _run(results, time.perf_counter() - started)


def bench_model(args: argparse.Namespace) -> dict[tuple[str, int], list[Run]]:
    """Engine, /generate and /generate_stream, round after round.

    The machine may be shared, so each round measures all three, and the table reports the
    median of the rounds. The engine and the server are never loaded at the same time.
    """
    server_args = [
        "--parallel", str(max(LEVELS)),
        "--threads", str(args.threads),
        "--ctx-size", str(args.ctx_size),
    ]  # fmt: skip
    runs: dict[tuple[str, int], list[Run]] = {}
    deadline = time.monotonic() + (args.max_seconds or float("inf"))

    def out_of_time(what: str) -> bool:
        if time.monotonic() < deadline:
            return False
        progress(f"server · --max-seconds {args.max_seconds:g} spent: skipping {what}")
        return True

    for round_ in range(args.rounds):
        if round_ and out_of_time(f"rounds {round_ + 1}-{args.rounds}"):
            break
        where = f"server · round {round_ + 1}/{args.rounds}"
        with tempfile.TemporaryDirectory() as tmp:
            progress(f"{where} · loading SmolLM2 into llama.cpp (engine, no HTTP)")
            engine = Engine(args, tmp)
            engine.one(PROMPTS[0], [])  # warm-up
            for level in LEVELS:
                if out_of_time(f"engine, {level} stream(s)"):
                    continue
                run = engine.run(level, args.single_requests)
                runs.setdefault(("engine", level), []).append(run)
                progress(f"{where} · engine, {level} stream(s): {_rate(run, level):,.1f} tok/s")
            engine.close()
        progress(f"{where} · starting tgispy serve (real model)")
        with start_server(server_args) as server, asyncio.Runner() as runner:
            session = runner.run(_session())
            try:
                runner.run(_http_one(session, server.url, PROMPTS[0], 8, False))  # warm-up
                for level in LEVELS:
                    for mode, stream in (("http", False), ("sse", True)):
                        if out_of_time(f"{mode}, {level} stream(s)"):
                            continue
                        run = runner.run(bench_http(session, server.url, level, args, stream))
                        runs.setdefault((mode, level), []).append(run)
                        path = "/generate_stream" if stream else "/generate"
                        progress(
                            f"{where} · {path}, {level} stream(s): {_rate(run, level):,.1f} tok/s"
                        )
            finally:
                runner.run(session.close())
    return runs


def _rate(run: Run, level: int) -> float:
    """The reported rate: per request for one stream, all requests together for several."""
    return run.single if level == 1 else run.aggregate


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def bench_sim(url: str, requests: int, concurrency: int, stream: bool) -> float:
    """Requests per second against a no-latency sim server."""
    path = "/generate_stream" if stream else "/generate"
    body = json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 8}}).encode()
    headers = {"Content-Type": "application/json"}
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.post(url + path, data=body, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200

        for _ in range(2):  # warm-up: connections and caches
            async with session.post(url + path, data=body, headers=headers) as resp:
                await resp.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx-size", type=int, default=512)
    parser.add_argument("--single-requests", type=int, help="default 4 (2 with --quick)")
    parser.add_argument("--rounds", type=int, help="median of this many, default 3 (1 --quick)")
    parser.add_argument("--sim-requests", type=int, help="default 3000 (1000 with --quick)")
    parser.add_argument("--sim-concurrency", type=int, default=32)
    parser.add_argument("--skip-model", action="store_true", help="only the sim benchmark")
    parser.add_argument("--json-out", type=Path, help="also write report rows here (run_all.py)")
    parser.add_argument("--quick", action="store_true", help="fewer requests (run_all.py)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        help="start no new model measurement after this long (a busy machine can make llama.cpp "
        "very slow); what was measured is still reported",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.single_requests = args.single_requests or (2 if quick else 4)
    args.rounds = args.rounds or (1 if quick else 3)
    args.sim_requests = args.sim_requests or (1000 if quick else 3000)
    json_rows: list[dict[str, object]] = []

    rows: list[tuple[str, str, str, str, str, str]] = []
    if not args.skip_model:
        runs = bench_model(args)
        for level in LEVELS:
            # Rates per mode; a mode is missing when --max-seconds cut the run short.
            med = {
                mode: statistics.median(_rate(r, level) for r in runs[(mode, level)])
                for mode in ("engine", "http", "sse")
                if (mode, level) in runs
            }
            scenario = f"embedded server tok/s, {level} stream{'s' if level > 1 else ''}"
            for subject, key in (
                ("llama.cpp engine (no HTTP)", "engine"),
                ("tgispy serve /generate", "http"),
                ("tgispy serve /generate_stream", "sse"),
            ):
                if (key, level) in runs:
                    samples = [_rate(r, level) for r in runs[(key, level)]]
                    json_rows.append(bench_row(scenario, subject, "tok/s", samples))
            e = med.get("engine")
            cells = [f"{med[m]:.1f}" if m in med else "-" for m in ("engine", "http", "sse")]
            costs = [f"{1 - med[m] / e:+.1%}" if e and m in med else "-" for m in ("http", "sse")]
            name = f"{level} ({'single' if level == 1 else 'aggregate'})"
            rows.append((name, cells[0], cells[1], cells[2], costs[0], costs[1]))
    progress(f"server · sim backend (no latency), {args.sim_requests} requests per route")
    with start_server(["--backend", "sim", "--max-concurrent-requests", "1024"]) as sim:
        sim_json = asyncio.run(bench_sim(sim.url, args.sim_requests, args.sim_concurrency, False))
        sim_sse = asyncio.run(bench_sim(sim.url, args.sim_requests, args.sim_concurrency, True))

    if rows:
        header = (
            "streams",
            "engine tok/s",
            "/generate tok/s",
            "/generate_stream tok/s",
            "HTTP cost",
            "SSE cost",
        )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        print(f"\nSmolLM2-135M Q4_1, {args.threads} threads, max_new_tokens={args.max_new_tokens}")
        for row in [header, *rows]:
            print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    sim_scenario = f"sim backend, {args.sim_concurrency} in flight"
    json_rows.append(
        bench_row(sim_scenario, "tgispy serve --backend sim /generate", "calls/s", [sim_json])
    )
    json_rows.append(
        bench_row(sim_scenario, "tgispy serve --backend sim /generate_stream", "calls/s", [sim_sse])
    )
    if args.json_out is not None:
        write_rows(args.json_out, json_rows)
    print(
        f"\nsim backend, {args.sim_concurrency} in flight, 8 tokens per request: "
        f"/generate {sim_json:.0f} req/s, /generate_stream {sim_sse:.0f} req/s "
        "(client and server share the machine)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
