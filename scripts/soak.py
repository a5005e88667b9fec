"""Soak test: minutes of mixed traffic against 3 faulty sim replicas, with every request counted.

Starts three ``tgispy serve --backend sim --sim-echo`` subprocesses on 127.0.0.1, each injecting
faults (429/500/503/422 answers, malformed and truncated bodies, dropped connections, hangs), and
drives one ``HFClientTGI`` over them with a mix of traffic until the time is up:

* async ``acall`` from many asyncio tasks, sync ``__call__`` from threads;
* streaming (``astream`` and the sync ``stream``);
* ``n=2`` (TGI's ``best_of``), the Messages API (``achat``);
* cache hits: a small pool of hot prompts, asked again and again through a memory + disk cache.

The replicas echo the prompt, so every answer can be checked against its own request (a reply
meant for another request would show). Each request ends in exactly one outcome: ``ok``
(verified answer), a typed tgispy error, or a failure of the soak (an untyped exception, a wrong
answer, or no outcome within the watchdog). At the end it prints the outcome counts, the client's
and servers' RSS and open file descriptors at start, after warm-up and at the end, and exits 1
if any request failed the soak or if memory or descriptors grew past the thresholds.

Run: ``python scripts/soak.py --minutes 3`` (the default is 30). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tgispy.cache import DiskCache, LMCache, MemoryCache
from tgispy.errors import NoHealthyReplicaError, TgispyError
from tgispy.lm._tgi import HFClientTGI
from tgispy.server import start_server
from tgispy.server._process import ServerHandle
from tgispy.tgi import RetryPolicy, Timeout

#: faults every replica injects (each replica draws them from its own seeded RNG)
FAULTS = [
    "--sim-error-rate", "429=0.005",
    "--sim-error-rate", "503=0.005",
    "--sim-error-rate", "500=0.003",
    "--sim-error-rate", "422=0.001",
    "--sim-malformed-rate", "0.003",
    "--sim-truncated-rate", "0.003",
    "--sim-drop-rate", "0.003",
    "--sim-hang-rate", "0.001",
    "--sim-hang-seconds", "5",
]  # fmt: skip
#: seconds a worker waits between requests (uniform draw), and after "no healthy replica"
THINK_S = 0.01
BACKOFF_S = 0.5
#: an operation that has not ended after this long counts as hung (client deadlines are ~20 s)
WATCHDOG_S = 60.0
#: memory and descriptor growth after warm-up beyond which the run fails
RSS_GROWTH_LIMIT = 0.25
RSS_GROWTH_SLACK_KB = 30_000
FD_GROWTH_LIMIT = 8

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]


# --- process resources --------------------------------------------------------------------------


def rss_kb(pid: int | str = "self") -> int:
    """Resident set size of a process, in kB (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int | str = "self") -> int:
    """Open file descriptors of a process (Linux /proc)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Snapshot:
    """Resources of the client and of each replica at one moment."""

    at_s: float
    client_rss_kb: int
    client_fds: int
    server_rss_kb: list[int]
    server_fds: list[int]

    @classmethod
    def take(cls, started: float, servers: list[ServerHandle]) -> Snapshot:
        return cls(
            at_s=round(time.monotonic() - started, 1),
            client_rss_kb=rss_kb(),
            client_fds=open_fds(),
            server_rss_kb=[rss_kb(s.pid) for s in servers],
            server_fds=[open_fds(s.pid) for s in servers],
        )


# --- accounting ----------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Every request issued, and how each one ended (thread-safe)."""

    issued: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, kind: str) -> None:
        with self.lock:
            self.issued[kind] += 1

    def settle(self, kind: str, outcome: str, seconds: float, detail: str | None = None) -> None:
        with self.lock:
            self.outcomes[f"{kind}:{outcome}"] += 1
            self.slowest_s = max(self.slowest_s, seconds)
            if detail is not None and len(self.failures) < 20:
                self.failures.append(f"{kind}: {detail}")

    def settled(self) -> int:
        with self.lock:
            return sum(self.outcomes.values())

    def failed(self) -> int:
        with self.lock:
            return sum(
                n for key, n in self.outcomes.items() if key.split(":", 1)[1].startswith("FAIL")
            )


def classify(kind: str, expected: list[str], got: Any, seconds: float, ledger: Ledger) -> None:
    """Settle one request: a verified answer, a typed error, or a failure of the soak."""
    if isinstance(got, TgispyError):
        ledger.settle(kind, type(got).__name__, seconds)
    elif isinstance(got, BaseException):
        detail = "".join(traceback.format_exception(got)[-3:]).strip()
        ledger.settle(kind, f"FAIL-untyped-{type(got).__name__}", seconds, detail)
    elif got == expected:
        ledger.settle(kind, "ok", seconds)
    elif got == ["cached", *expected]:
        ledger.settle(kind, "ok-cached", seconds)
    else:
        ledger.settle(kind, "FAIL-wrong-answer", seconds, f"expected {expected!r}, got {got!r}")


# --- traffic -------------------------------------------------------------------------------------


class Traffic:
    """The operations of the mix, each returning what the answer should be and what it was."""

    def __init__(self, lm: HFClientTGI, hot: list[str], rng: random.Random) -> None:
        self.lm = lm
        self.hot = hot
        self.rng = rng
        self.serial = 0
        self.lock = threading.Lock()

    def prompt(self) -> str:
        with self.lock:
            self.serial += 1
            serial = self.serial
        words = " ".join(self.rng.choice(WORDS) for _ in range(6))
        return f"soak {serial} {words}"

    # async
    async def acall(self) -> tuple[list[str], Any]:
        prompt = self.prompt()
        return [prompt], await self.lm.acall(prompt)

    async def acall_n2(self) -> tuple[list[str], Any]:
        prompt = self.prompt()
        return [prompt, prompt], await self.lm.acall(prompt, n=2, temperature=0.7)

    async def astream(self) -> tuple[list[str], Any]:
        prompt = self.prompt()
        pieces = [piece async for piece in self.lm.astream(prompt)]
        return [prompt], ["".join(pieces)]

    async def achat(self) -> tuple[list[str], Any]:
        prompt = self.prompt()
        reply = await self.lm.achat([{"role": "user", "content": prompt}])
        return [prompt], [choice["text"] for choice in reply["choices"]]

    async def ahot(self) -> tuple[list[str], Any]:
        prompt = self.rng.choice(self.hot)
        generation = await self.lm.acomplete(prompt)
        texts = [c.text for c in generation.completions]
        return [prompt], (["cached", *texts] if generation.cached else texts)

    # sync
    def call(self) -> tuple[list[str], Any]:
        prompt = self.prompt()
        return [prompt], self.lm(prompt)

    def stream(self) -> tuple[list[str], Any]:
        prompt = self.prompt()
        return [prompt], ["".join(self.lm.stream(prompt))]

    def chat(self) -> tuple[list[str], Any]:
        prompt = self.prompt()
        reply = self.lm.chat([{"role": "user", "content": prompt}])
        return [prompt], [choice["text"] for choice in reply["choices"]]


async def async_worker(
    traffic: Traffic, ledger: Ledger, deadline: float, rng: random.Random
) -> None:
    ops: list[tuple[str, Callable[[], Awaitable[tuple[list[str], Any]]], int]] = [
        ("async", traffic.acall, 8),
        ("async-n2", traffic.acall_n2, 2),
        ("async-stream", traffic.astream, 3),
        ("async-chat", traffic.achat, 2),
        ("async-hot", traffic.ahot, 4),
    ]
    names, funcs, weights = zip(*ops, strict=True)
    while time.monotonic() < deadline:
        index = rng.choices(range(len(ops)), weights=weights)[0]
        kind = names[index]
        ledger.issue(kind)
        started = time.monotonic()
        expected: list[str] = []
        try:
            expected, got = await asyncio.wait_for(funcs[index](), WATCHDOG_S)
        except TimeoutError:
            got = RuntimeError(f"no outcome within {WATCHDOG_S:g} s (hung)")
            ledger.settle(kind, "FAIL-hung", time.monotonic() - started, str(got))
            continue
        except BaseException as exc:
            got = exc
        classify(kind, expected, got, time.monotonic() - started, ledger)
        await asyncio.sleep(_pause(got, rng))


def _pause(outcome: Any, rng: random.Random) -> float:
    """A user's pause before the next request: short, or a back-off when the fleet is down."""
    return BACKOFF_S if isinstance(outcome, NoHealthyReplicaError) else rng.uniform(0, THINK_S)


def sync_worker(traffic: Traffic, ledger: Ledger, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    ops: list[tuple[str, Callable[[], tuple[list[str], Any]]]] = [
        ("sync", traffic.call),
        ("sync", traffic.call),
        ("sync-stream", traffic.stream),
        ("sync-chat", traffic.chat),
    ]
    while time.monotonic() < deadline:
        kind, op = rng.choice(ops)
        ledger.issue(kind)
        started = time.monotonic()
        expected: list[str] = []
        try:
            expected, got = op()
        except BaseException as exc:
            got = exc
        seconds = time.monotonic() - started
        if seconds > WATCHDOG_S:
            ledger.settle(kind, "FAIL-hung", seconds, f"took {seconds:.0f} s")
            continue
        classify(kind, expected, got, seconds, ledger)
        time.sleep(_pause(got, rng))


# --- the run --------------------------------------------------------------------------------------


def start_replicas(stack: ExitStack, count: int) -> list[ServerHandle]:
    servers = []
    for index in range(count):
        args = [
            "--backend", "sim", "--sim-echo", "--sim-token-latency", "0.001",
            "--sim-seed", str(index), "--log-level", "error", *FAULTS,
        ]  # fmt: skip
        servers.append(stack.enter_context(start_server(args, timeout=60)))
    return servers


def make_client(servers: list[ServerHandle], cache_dir: Path | None) -> HFClientTGI:
    disk = DiskCache(cache_dir) if cache_dir is not None else None
    cache = LMCache(memory=MemoryCache(maxsize=2_000), disk=disk)
    return HFClientTGI(
        "tgispy/sim",
        None,
        [s.url for s in servers],
        {"timeout": Timeout(connect=2.0, first_byte=3.0, total=10.0)},
        cache=cache,
        retry=RetryPolicy(max_attempts=3, deadline=20.0),
        history_size=1000,
    )


async def drive(
    traffic: Traffic, ledger: Ledger, deadline: float, tasks: int, threads: int
) -> None:
    loop = asyncio.get_running_loop()
    sync_jobs = [
        loop.run_in_executor(None, sync_worker, traffic, ledger, deadline, 1000 + i)
        for i in range(threads)
    ]
    async_jobs = [
        asyncio.create_task(async_worker(traffic, ledger, deadline, random.Random(i)))
        for i in range(tasks)
    ]
    await asyncio.gather(*async_jobs, *sync_jobs)


@dataclass
class Monitor:
    """Samples resources every ``every`` seconds until stopped, printing a progress line."""

    ledger: Ledger
    servers: list[ServerHandle]
    started: float
    every: float
    snapshots: list[Snapshot] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        ledger, started, servers = self.ledger, self.started, self.servers
        while not self.stop.wait(self.every):
            snap = Snapshot.take(started, servers)
            self.snapshots.append(snap)
            print(
                f"[{snap.at_s:7.1f} s] settled {ledger.settled():7d}  failed {ledger.failed()}  "
                f"client rss {snap.client_rss_kb} kB fds {snap.client_fds}  "
                f"servers rss {snap.server_rss_kb} fds {snap.server_fds}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run")
    parser.add_argument("--tasks", type=int, default=24, help="concurrent asyncio workers")
    parser.add_argument("--threads", type=int, default=4, help="concurrent sync workers")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--report", type=Path, help="also write the report here as JSON")
    parser.add_argument(
        "--no-disk-cache",
        action="store_true",
        help="memory cache only (SQLite's page cache and mmap grow RSS as the database grows)",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.tasks < 1 or args.threads < 0 or args.replicas < 1:
        parser.error("--minutes must be > 0, --tasks >= 1, --threads >= 0, --replicas >= 1")

    ledger = Ledger()
    with ExitStack() as stack:
        servers = start_replicas(stack, args.replicas)
        cache_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tgispy-soak-")))
        lm = make_client(servers, None if args.no_disk_cache else cache_dir / "cache")
        traffic = Traffic(lm, [f"hot prompt {i} {WORDS[i % len(WORDS)]}" for i in range(40)],
                          random.Random(7))  # fmt: skip
        started = time.monotonic()
        before = Snapshot.take(started, servers)
        print(f"soak: {args.minutes:g} min against {[s.url for s in servers]}", flush=True)
        every = max(5.0, min(60.0, args.minutes * 60 / 12))
        monitor = Monitor(ledger, servers, started, every)
        reporter = threading.Thread(target=monitor.run, name="soak-monitor", daemon=True)
        reporter.start()
        deadline = started + args.minutes * 60
        asyncio.run(drive(traffic, ledger, deadline, args.tasks, args.threads))
        monitor.stop.set()
        reporter.join()
        elapsed = time.monotonic() - started
        after = Snapshot.take(started, servers)
        # warm-up: the first snapshot after 10% of the run (caches and pools filled by then)
        warm = next((s for s in monitor.snapshots if s.at_s >= args.minutes * 6), before)
        replica_stats = lm.stats()

    issued = sum(ledger.issued.values())
    settled = ledger.settled()
    failed = ledger.failed()
    rss_growth = after.client_rss_kb - warm.client_rss_kb
    rss_ok = rss_growth <= warm.client_rss_kb * RSS_GROWTH_LIMIT + RSS_GROWTH_SLACK_KB
    fds_ok = after.client_fds <= warm.client_fds + FD_GROWTH_LIMIT
    servers_ok = all(
        a <= w * (1 + RSS_GROWTH_LIMIT) + RSS_GROWTH_SLACK_KB
        for a, w in zip(after.server_rss_kb, warm.server_rss_kb, strict=True)
    ) and all(
        a <= w + FD_GROWTH_LIMIT for a, w in zip(after.server_fds, warm.server_fds, strict=True)
    )
    verdict = issued == settled and failed == 0 and rss_ok and fds_ok and servers_ok
    report = {
        "minutes": round(elapsed / 60, 2),
        "issued": issued,
        "settled": settled,
        "failed": failed,
        "requests_per_s": round(issued / elapsed, 1),
        "slowest_request_s": round(ledger.slowest_s, 2),
        "issued_by_kind": dict(sorted(ledger.issued.items())),
        "outcomes": dict(sorted(ledger.outcomes.items())),
        "failures": ledger.failures,
        "resources": {
            "start": before.__dict__,
            "after_warmup": warm.__dict__,
            "end": after.__dict__,
        },
        "checks": {
            "every_request_accounted_for": issued == settled,
            "no_failures": failed == 0,
            "client_rss_flat": rss_ok,
            "client_fds_flat": fds_ok,
            "servers_flat": servers_ok,
        },
        "replicas": {
            url: {k: v for k, v in stats.items() if k in ("requests", "errors", "ejections")}
            for url, stats in replica_stats.items()
        },
        "verdict": "PASS" if verdict else "FAIL",
    }
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.report is not None:
        args.report.write_text(text + "\n", encoding="utf-8")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
