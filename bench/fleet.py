"""Fleet benchmark: does a list of TGI replicas behave as one fast LM?

Replicas are `python -m tgispy.server --backend sim` subprocesses (their own processes, so they
do not share the client's GIL) of fixed capacity: each generates `--capacity` requests at once,
one token every `--token-latency` seconds, and queues the rest, so a replica's throughput is
bounded by its capacity rather than by Python overhead. The client is tgispy's `HFClientTGI`
(`acall`, cache off), run in this process.

1. Scaling: aggregate calls/s with K = 1, 2, 4 replicas at enough concurrency to saturate them
   (3 x capacity in flight per replica). Target: K replicas >= 0.9 x K x one replica.
2. Tail latency: 4 replicas, one 10x slower. p50/p99 of tgispy's routing (p2c, the default, and
   least_outstanding) against uniform random routing (DSPy 2.4's policy, as
   `RoutingPolicy(strategy="random")`), interleaved in the same run. Target: p99 <= 1/2 random's.

Prints a markdown table and writes it, with a PNG chart, to bench/results/fleet-<date>.md/.png
(the chart needs matplotlib, imported only then; without it the PNG is skipped with a message).
``--json PATH`` writes the raw samples; ``--json-out FILE`` writes report rows for run_all.py;
``--quick`` runs 120 calls per replica for scaling unless given; the tail-latency part keeps its
600 calls, because with fewer the p99 lands on the few calls a router sends to the slow replica
before it has measured it, and stops telling the strategies apart.

usage: python bench/fleet.py [--rounds 1] [--calls-per-replica 300] [--latency-calls 600]
       [--token-latency 0.005] [--capacity 4] [--concurrency 8] [--json PATH]
       [--json-out FILE] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import bench_row, progress, write_rows

from tgispy.lm._tgi import HFClientTGI
from tgispy.server import ServerHandle, start_server
from tgispy.tgi._policy import RoutingPolicy, Strategy
from tgispy.tgi._transport import close_sessions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: ten simulator tokens (then EOS): a request takes ~11 x token latency
TEXT = "Paris is the capital and largest city of France."
MODEL = "tgispy/sim"
SLOWDOWN = 10
STRATEGIES: tuple[tuple[str, Strategy], ...] = (
    ("tgispy p2c (default)", "p2c"),
    ("tgispy least_outstanding", "least_outstanding"),
    ("uniform random (DSPy 2.4)", "random"),
)


@dataclass
class Settings:
    rounds: int
    calls_per_replica: int
    latency_calls: int
    token_latency: float
    capacity: int
    concurrency: int


@dataclass
class Results:
    throughput: dict[int, list[float]] = field(default_factory=dict)
    latency: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0


# ---- replicas ----------------------------------------------------------------------------------
def _server_args(settings: Settings, token_latency: float) -> list[str]:
    return [
        "--sim-text",
        TEXT,
        "--sim-token-latency",
        str(token_latency),
        "--sim-capacity",
        str(settings.capacity),
        # Queue in the engine (like TGI's batcher) instead of answering 429 under load.
        "--max-concurrent-requests",
        "1024",
    ]


@contextlib.contextmanager
def replicas(settings: Settings, normal: int, slow: int) -> Iterator[list[ServerHandle]]:
    """Start ``normal`` replicas and ``slow`` 10x slower ones; stop them all afterwards."""
    handles: list[ServerHandle] = []
    try:
        for i in range(normal + slow):
            latency = settings.token_latency * (SLOWDOWN if i >= normal else 1)
            handles.append(
                start_server(["--backend", "sim", *_server_args(settings, latency)], timeout=60)
            )
        yield handles
    finally:
        for handle in handles:
            handle.stop(timeout=10.0)


# ---- load --------------------------------------------------------------------------------------
def _client(urls: Sequence[str], strategy: Strategy = "p2c") -> HFClientTGI:
    return HFClientTGI(
        MODEL, None, list(urls), cache=False, routing=RoutingPolicy(strategy=strategy)
    )


async def _closed_loop(
    lm: HFClientTGI, calls: int, in_flight: int
) -> tuple[float, list[float], int]:
    """``calls`` calls, ``in_flight`` at a time: (seconds, per-call latencies, errors)."""
    todo = iter(range(calls))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in todo:
            started = time.perf_counter()
            try:
                (text,) = await lm.acall(f"question {i}")
            except Exception as exc:  # counted and reported: a benchmark must not hide failures
                errors += 1
                print(f"  call {i} failed: {exc}", file=sys.stderr)
                continue
            if text != TEXT:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - started, latencies, errors


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


async def scaling(settings: Settings, urls: Sequence[str], results: Results) -> None:
    for round_ in range(settings.rounds):
        for k in (1, 2, 4):
            lm = _client(urls[:k])
            in_flight = 3 * settings.capacity * k
            await _closed_loop(lm, in_flight * 2, in_flight)  # warm-up: connections, /info
            calls = settings.calls_per_replica * k
            seconds, _, errors = await _closed_loop(lm, calls, in_flight)
            rate = (calls - errors) / seconds
            results.errors += errors
            results.throughput.setdefault(k, []).append(rate)
            progress(
                f"fleet · round {round_ + 1}/{settings.rounds} · scaling K={k}, "
                f"{in_flight} in flight: {rate:,.1f} calls/s"
            )


async def tail_latency(settings: Settings, urls: Sequence[str], results: Results) -> None:
    for round_ in range(settings.rounds):
        for name, strategy in STRATEGIES:
            lm = _client(urls, strategy)
            seconds, latencies, errors = await _closed_loop(
                lm, settings.latency_calls, settings.concurrency
            )
            slow_share = lm.stats()[urls[-1]]["requests"] / max(settings.latency_calls, 1)
            row = {
                "p50": _percentile(latencies, 0.50),
                "p99": _percentile(latencies, 0.99),
                "calls_per_s": len(latencies) / seconds,
                "slow_share": slow_share,
            }
            results.errors += errors
            results.latency.setdefault(name, []).append(row)
            progress(
                f"fleet · round {round_ + 1}/{settings.rounds} · slow replica, {name}: "
                f"p50 {row['p50'] * 1000:,.1f} ms, p99 {row['p99'] * 1000:,.1f} ms, "
                f"{row['calls_per_s']:,.1f} calls/s, {slow_share:.1%} to the slow replica"
            )


# ---- report ------------------------------------------------------------------------------------
def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _median_row(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: _median([r[key] for r in rows]) for key in rows[0]}


def markdown(settings: Settings, results: Results) -> str:
    per_request = 11 * settings.token_latency
    one = _median(results.throughput[1])
    lines = [
        f"# tgispy fleet benchmark, {dt.date.today().isoformat()}",
        "",
        f"Machine: {platform.machine()}, {_cpus()} cores, Python {platform.python_version()}. "
        f"Replicas: `python -m tgispy.server --backend sim` subprocesses, capacity "
        f"{settings.capacity}, {settings.token_latency * 1000:g} ms/token, 10 tokens + EOS "
        f"(~{per_request * 1000:.0f} ms a request, so ~{settings.capacity / per_request:.0f} "
        f"calls/s a replica at best). Client: `HFClientTGI.acall`, cache off, in one process. "
        f"Median of {settings.rounds} round(s), interleaved. Took {results.seconds:.0f} s; "
        f"failed calls: {results.errors}.",
        "",
        "## Scaling (p2c, 3 x capacity in flight per replica)",
        "",
        "| replicas K | calls/s | vs K x one replica | target |",
        "|---|---|---|---|",
    ]
    for k, samples in sorted(results.throughput.items()):
        rate = _median(samples)
        efficiency = rate / (k * one)
        verdict = "ok" if efficiency >= 0.9 else "MISSED"
        lines.append(f"| {k} | {rate:,.1f} | {efficiency:.2f} | >= 0.90 ({verdict}) |")
    random_p99 = _median_row(results.latency[STRATEGIES[-1][0]])["p99"]
    lines += [
        "",
        f"## Tail latency: 4 replicas, one {SLOWDOWN}x slower "
        f"({settings.concurrency} in flight, {settings.latency_calls} calls)",
        "",
        "| routing | p50 ms | p99 ms | p99 vs random | calls/s | to the slow replica |",
        "|---|---|---|---|---|---|",
    ]
    for name, _ in STRATEGIES:
        row = _median_row(results.latency[name])
        ratio = row["p99"] / random_p99
        lines.append(
            f"| {name} | {row['p50'] * 1000:,.1f} | {row['p99'] * 1000:,.1f} | {ratio:.2f} | "
            f"{row['calls_per_s']:,.1f} | {row['slow_share']:.1%} |"
        )
    ours = _median_row(results.latency[STRATEGIES[0][0]])["p99"] / random_p99
    verdict = "ok" if ours <= 0.5 else "MISSED"
    lines += ["", f"Target p99 (p2c) <= 0.5 x random's: {ours:.2f} ({verdict})."]
    return "\n".join(lines) + "\n"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def chart(results: Results, path: Path) -> bool:
    """Write the PNG; ``False`` (with a message) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is not installed: skipping the PNG chart "
            "(`.venv/bin/pip install matplotlib` to get it)"
        )
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    ks = sorted(results.throughput)
    rates = [_median(results.throughput[k]) for k in ks]
    one = rates[0]
    left.plot(ks, rates, "o-", color="#d9534f", label="tgispy (p2c)")
    left.plot(ks, [k * one for k in ks], "--", color="#999999", label="K x one replica")
    left.plot(ks, [0.9 * k * one for k in ks], ":", color="#999999", label="0.9 x K x one")
    left.set_xticks(ks)
    left.set_xlabel("replicas K")
    left.set_ylabel("calls/s")
    left.set_title("Aggregate throughput", fontsize=10)
    left.legend(fontsize=8)
    names = [name for name, _ in STRATEGIES]
    rows = [_median_row(results.latency[n]) for n in names]
    xs = range(len(names))
    width = 0.38
    right.bar([x - width / 2 for x in xs], [r["p50"] * 1000 for r in rows], width, label="p50")
    right.bar([x + width / 2 for x in xs], [r["p99"] * 1000 for r in rows], width, label="p99")
    right.set_xticks(list(xs), [n.replace(" (", "\n(") for n in names], fontsize=8)
    right.set_ylabel("latency, ms (log)")
    right.set_yscale("log")
    right.set_title(f"4 replicas, one {SLOWDOWN}x slower", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def report_rows(settings: Settings, results: Results) -> list[dict[str, object]]:
    """run_all.py's rows: calls/s at K = 1, 2, 4 (with the scaling efficiency) and p99s."""
    one = _median(results.throughput[1])
    rows = []
    scaling = "fleet: calls/s with K sim replicas (p2c)"
    for k, samples in sorted(results.throughput.items()):
        row = bench_row(scaling, f"tgispy, K={k}", "calls/s", samples)
        if k > 1:
            row["vs"] = f"{_median(samples) / (k * one):.2f} of K x (K=1) (target >= 0.90)"
        rows.append(row)
    scenario = f"fleet: p99 latency, 4 replicas, one {SLOWDOWN}x slower"
    for name, _ in STRATEGIES:
        p99s = [r["p99"] * 1000 for r in results.latency[name]]
        rows.append(bench_row(scenario, name, "ms", p99s, higher_is_better=False))
    return rows


# ---- main --------------------------------------------------------------------------------------
async def _run(settings: Settings, results: Results) -> None:
    progress("fleet · starting 4 sim replicas (scaling: K = 1, 2, 4)")
    with replicas(settings, normal=4, slow=0) as handles:
        await scaling(settings, [h.url for h in handles], results)
    progress(f"fleet · starting 3 sim replicas + 1 {SLOWDOWN}x slower (tail latency)")
    with replicas(settings, normal=3, slow=1) as handles:
        await tail_latency(settings, [h.url for h in handles], results)
    await close_sessions()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (median)")
    parser.add_argument("--calls-per-replica", type=int, help="default 300 (120 with --quick)")
    parser.add_argument(
        "--latency-calls", type=int, default=600, help="calls per strategy (also with --quick)"
    )
    parser.add_argument("--token-latency", type=float, default=0.005, help="seconds per token")
    parser.add_argument("--capacity", type=int, default=4, help="concurrent generations")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight (tail latency)")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--json-out", type=Path, help="write report rows here (run_all.py)")
    parser.add_argument("--quick", action="store_true", help="fewer scaling calls (run_all.py)")
    args = parser.parse_args(argv)
    calls_per_replica = args.calls_per_replica or (120 if args.quick else 300)
    settings = Settings(
        rounds=args.rounds,
        calls_per_replica=calls_per_replica,
        latency_calls=args.latency_calls,
        token_latency=args.token_latency,
        capacity=args.capacity,
        concurrency=args.concurrency,
    )
    # Ejections and failed calls are reported in the table; keep the console readable.
    logging.basicConfig(level=logging.ERROR)
    results = Results()
    started = time.monotonic()
    asyncio.run(_run(settings, results))
    results.seconds = time.monotonic() - started
    report = markdown(settings, results)
    print()
    print(report)
    if args.json is not None:
        raw: dict[str, Any] = {
            "settings": settings.__dict__,
            "throughput": results.throughput,
            "latency": results.latency,
            "errors": results.errors,
        }
        args.json.write_text(json.dumps(raw, indent=2))
    if args.json_out is not None:
        write_rows(args.json_out, report_rows(settings, results))
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = RESULTS / f"fleet-{dt.date.today().isoformat()}"
        has_chart = chart(results, stem.with_suffix(".png"))
        if has_chart:
            report += f"\n![fleet chart]({stem.name}.png)\n"
        stem.with_suffix(".md").write_text(report)
        print(f"wrote {stem}.md" + (f" and {stem}.png" if has_chart else ""))
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
