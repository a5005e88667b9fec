"""Prefix-affinity routing on a real fleet: prefix vs p2c vs round robin (issue 18).

Run: ``.venv/bin/python bench/prefix.py`` (minutes; ``--quick`` for a smoke run with short
prefixes).

K = 2 and 3 replicas of ``tgispy serve`` (llama.cpp, SmolLM2-135M, 1 thread each, prompt cache on,
``--parallel`` slots each) take M distinct few-shot programs (DSPy 2.4's template: instructions,
format, demos; about ``--prefix-tokens`` tokens each; M larger than one replica's slots and not a
multiple of K, so round robin cannot stumble on affinity), their examples interleaved,
``--in-flight`` requests at a time (default: one per replica; at higher concurrency the rounds
overlap, and a program's next example arrives while its first is still computing the prefix, so
no cache can help it). Each run gets programs no replica has seen yet: llama.cpp keeps prefixes
evicted from a slot in a host-memory prompt cache (8 GiB by default), so flushing the slots would
not make a run cold. Reported per K and strategy: throughput (answers per second of wall time,
cold start included), mean and p99 latency, the server's median compute time per request and the
share under ``--fast`` seconds; then the same on prefix-free traffic (every prompt distinct).

llama.cpp counts cached prompt tokens per request (``timings.cache_n``, ``prompt_tokens_details``),
but ``tgispy serve`` does not pass them on: its engine keeps only ``prompt_tokens`` (``EngineEnd``)
and its headers and ``/metrics`` carry no cache counter. The server's own compute time per request
(``x-compute-time``) stands in for it: a miss of a ~1,000-token prefix costs seconds on one
thread, a hit a fraction of one (when no other slot of that replica is computing a prefix).

``--json-out FILE`` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _common import progress

from tgispy.server import start_server
from tgispy.tgi import RetryPolicy, RoutingPolicy, Timeout
from tgispy.tgi._affinity import SEPARATOR
from tgispy.tgi._client import TGIClient
from tgispy.tgi._response import parse_generate_response
from tgispy.tgi._transport import HTTPResponse

WORDS = [
    "river",
    "mountain",
    "lantern",
    "copper",
    "violet",
    "harbor",
    "meadow",
    "thunder",
    "pepper",
    "marble",
    "falcon",
    "garden",
    "silver",
    "canyon",
    "orchard",
    "candle",
    "willow",
    "ember",
    "glacier",
    "saddle",
    "compass",
    "velvet",
    "quarry",
    "beacon",
    "timber",
    "pebble",
    "walnut",
    "crystal",
    "lagoon",
    "thistle",
    "anchor",
    "prairie",
    "cobalt",
    "juniper",
    "basalt",
]


@dataclass
class Row:
    workload: str
    replicas: int
    strategy: str
    requests: int
    seconds: float
    throughput: float
    mean_latency: float
    p99_latency: float
    fast_share: float
    compute_median: float
    failures: int


def program_prefix(index: int, tokens: int) -> str:
    """A DSPy-2.4-shaped few-shot prefix of about ``tokens`` tokens, distinct per ``index``."""
    rng = random.Random(index)
    parts = [
        f"Given the fields `question`, produce the fields `answer`. Program {index}.",
        "Follow the following format.\n\nQuestion: ${question}\nAnswer: ${answer}",
    ]
    size = sum(len(p) for p in parts)
    demo = 0
    while size < tokens * 5.3:  # about 5.3 characters per SmolLM2 token on this text (measured)
        facts = " ".join(rng.choice(WORDS) for _ in range(24))
        parts.append(f"Question: What follows {facts}?\nAnswer: {rng.choice(WORDS)}")
        size += len(parts[-1]) + len(SEPARATOR)
        demo += 1
    return SEPARATOR.join(parts)


def workload(programs: int, examples: int, tokens: int, first: int = 0) -> list[str]:
    """``examples`` rounds over ``programs`` programs (numbered from ``first``), interleaved."""
    prefixes = [program_prefix(first + p, tokens) for p in range(programs)]
    return [
        prefixes[p] + SEPARATOR + f"Question: What follows {WORDS[e % len(WORDS)]} {e}?\nAnswer:"
        for e in range(examples)
        for p in range(programs)
    ]


def prefix_free(count: int, tokens: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(int(tokens * 0.8))) + f" {i}. Next word:"
        for i in range(count)
    ]


def _parse(resp: HTTPResponse, replica: str) -> tuple[float, int]:
    parse_generate_response(resp.body)
    compute = float(resp.headers.get("x-compute-time", "nan"))
    return compute, int(resp.headers.get("x-prompt-tokens", "0"))


async def run(
    urls: Sequence[str],
    strategy: str,
    prompts: Sequence[str],
    in_flight: int,
    max_new: int,
    max_seconds: float,
) -> tuple[float, list[float], list[float], int]:
    client = TGIClient(
        urls,
        routing=RoutingPolicy(strategy=strategy),  # type: ignore[arg-type]
        retry=RetryPolicy(max_attempts=2),
        timeout=Timeout(total=600.0, first_byte=600.0),
    )
    latencies: list[float] = []
    compute: list[float] = []
    prompt_tokens: list[int] = []
    failures = 0
    gate = asyncio.Semaphore(in_flight)

    async def one(prompt: str) -> None:
        nonlocal failures
        body = {
            "inputs": prompt,
            "parameters": {"max_new_tokens": max_new, "do_sample": False, "stop": ["\n"]},
        }
        async with gate:
            if time.perf_counter() - began > max_seconds:
                return  # the run's time is up: answers so far count
            started = time.perf_counter()
            try:
                (seconds, tokens), _ = await client.post("/generate", body, _parse)
            except Exception as exc:
                failures += 1
                progress(f"  request failed: {type(exc).__name__}: {exc}")
                return
            latencies.append(time.perf_counter() - started)
            compute.append(seconds)
            prompt_tokens.append(tokens)

    began = started = time.perf_counter()
    tasks = []
    for prompt in prompts:  # submitted in order: the gate keeps the interleaving
        tasks.append(asyncio.create_task(one(prompt)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    if prompt_tokens:
        progress(f"  prompt tokens: mean {statistics.mean(prompt_tokens):.0f}")
    return wall, latencies, compute, failures


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.99 * len(ordered)), 1) - 1] if ordered else float("nan")


def row(
    workload_name: str,
    k: int,
    strategy: str,
    result: tuple[float, list[float], list[float], int],
    fast: float,
) -> Row:
    wall, lat, compute, failures = result
    return Row(
        workload=workload_name,
        replicas=k,
        strategy=strategy,
        requests=len(lat),
        seconds=round(wall, 2),
        throughput=round(len(lat) / wall, 3),
        mean_latency=round(statistics.mean(lat), 3) if lat else float("nan"),
        p99_latency=round(p99(lat), 3),
        fast_share=round(sum(1 for c in compute if c < fast) / len(compute), 3) if compute else 0,
        compute_median=round(statistics.median(compute), 3) if compute else float("nan"),
        failures=failures,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", default="2,3", help="comma-separated K values")
    parser.add_argument(
        "--strategies", default="prefix,p2c,round_robin", help="in run order; repeats allowed"
    )
    parser.add_argument("--workloads", default="few-shot,prefix-free")
    parser.add_argument("--programs", type=int, default=7, help="M distinct prefixes")
    parser.add_argument("--examples", type=int, default=3, help="examples per program")
    parser.add_argument("--prefix-tokens", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=4, help="--parallel of each server")
    parser.add_argument("--max-new-tokens", type=int, default=4)
    parser.add_argument("--free-requests", type=int, default=16, help="prefix-free requests")
    parser.add_argument("--free-tokens", type=int, default=120)
    parser.add_argument("--fast", type=float, default=2.0, help="x-compute-time of a cache hit")
    parser.add_argument(
        "--in-flight", type=int, default=0, help="requests in flight (default: one per replica)"
    )
    parser.add_argument(
        "--max-run-seconds", type=float, default=240.0, help="no new request after this long"
    )
    parser.add_argument("--quick", action="store_true", help="short prefixes, a smoke run")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.prefix_tokens, args.examples, args.free_requests = 150, 2, 6
    ks = [int(k) for k in args.replicas.split(",")]
    strategies = args.strategies.split(",")
    rows: list[Row] = []
    runs = 0
    server_args = [
        "--threads", "1", "--parallel", str(args.slots), "--ctx-size", "2048",
    ]  # fmt: skip
    with asyncio.Runner() as runner:
        for k in ks:
            progress(f"starting {k} replicas")
            servers = [start_server(server_args) for _ in range(k)]
            try:
                urls = [s.url for s in servers]
                in_flight = args.in_flight or k
                # one short request per replica first: a fresh server's first answer is slow
                runner.run(run(urls, "round_robin", prefix_free(k, 10, -1), k, 1, 60.0))
                few_shot = strategies if "few-shot" in args.workloads.split(",") else []
                for strategy in few_shot:
                    # fresh programs for every run: no replica has seen them (llama.cpp keeps
                    # evicted prefixes in host memory, so flushing the slots would not do)
                    runs += 1
                    prompts = workload(
                        args.programs, args.examples, args.prefix_tokens, runs * 1000
                    )
                    progress(f"K={k} {strategy}: {len(prompts)} few-shot requests")
                    result = runner.run(
                        run(
                            urls,
                            strategy,
                            prompts,
                            in_flight,
                            args.max_new_tokens,
                            args.max_run_seconds,
                        )
                    )
                    rows.append(row("few-shot", k, strategy, result, args.fast))
                    progress(f"  {rows[-1]}")
                free_strategies = [s for s in strategies if s in ("prefix", "p2c")]
                if "prefix-free" not in args.workloads.split(","):
                    free_strategies = []
                for strategy in free_strategies if args.free_requests else []:
                    runs += 1
                    free = prefix_free(args.free_requests, args.free_tokens, runs)
                    progress(f"K={k} {strategy}: {len(free)} prefix-free requests")
                    result = runner.run(
                        run(
                            urls,
                            strategy,
                            free,
                            in_flight,
                            args.max_new_tokens,
                            args.max_run_seconds,
                        )
                    )
                    rows.append(row("prefix-free", k, strategy, result, args.fast))
                    progress(f"  {rows[-1]}")
            finally:
                for s in servers:
                    s.stop()
    print()
    print(
        "| workload | K | strategy | answers | wall s | answers/s | mean s | p99 s "
        "| server compute median s | compute < fast |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.workload} | {r.replicas} | {r.strategy} | {r.requests} | {r.seconds} | "
            f"{r.throughput} | {r.mean_latency} | {r.p99_latency} | {r.compute_median} | "
            f"{r.fast_share:.0%} |"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
