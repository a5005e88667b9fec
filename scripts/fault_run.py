"""Issue 13.2's fault run: partial faults must never become a total outage.

Three ``tgispy serve --backend sim`` replicas on 127.0.0.1: one healthy, one answering 429 on 80%
of calls, one sending malformed and truncated bodies and dropping connections on 15% of calls
each (the sim drops /generate connections too, so 44% of that replica's /generate calls fail;
``--drop-rate 0`` leaves 30%). 10,000 ChainOfThought calls (each one or two LM calls) run 32
in flight; the healthy replica is SIGKILLed after 3,000 and restarted on the same port after
8,000. Prints how many calls were answered, the errors by
type (each must name its replicas), and how long the restarted replica took to serve again.

Run: ``python scripts/fault_run.py [--calls 10000]``. Loopback only, bounded by --calls and
--timeout. Uses only the public API, so the same script measures older versions too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import tgispy as dspy
from tgispy.errors import NoHealthyReplicaError, TGIError
from tgispy.tgi import RetryPolicy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(port: int, *faults: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "tgispy.server",
        "--backend",
        "sim",
        "--port",
        str(port),
        "--sim-text",
        "Reasoning: the capital of France is Paris. Answer: Paris",
        "--sim-token-latency",
        "0.0005",
        "--sim-capacity",
        "64",
        *faults,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"replica on port {port} did not start")


def names_replicas(error: TGIError, urls: set[str]) -> bool:
    named = {error.replica} if error.replica else set()
    if isinstance(error, NoHealthyReplicaError):
        named |= set(error.errors)
    return bool(named) and named <= urls


async def run(calls: int, timeout: float, max_attempts: int | None, drop_rate: float) -> int:
    ports = [free_port() for _ in range(3)]
    healthy_port = ports[0]
    procs = {
        ports[0]: start(ports[0]),
        ports[1]: start(ports[1], "--sim-error-rate", "429=0.8"),
        ports[2]: start(
            ports[2],
            "--sim-malformed-rate",
            "0.15",
            "--sim-truncated-rate",
            "0.15",
            "--sim-drop-rate",
            str(drop_rate),
        ),
    }
    urls = {f"http://127.0.0.1:{p}" for p in ports}
    healthy_url = f"http://127.0.0.1:{healthy_port}"
    extra = {} if max_attempts is None else {"retry": RetryPolicy(max_attempts=max_attempts)}
    lm = dspy.HFClientTGI("sim", ports, "http://127.0.0.1", cache=False, **extra)
    qa = dspy.ChainOfThought("question -> answer")
    outcomes: Counter[str] = Counter()
    unnamed = 0
    tries: Counter[int] = Counter()  # attempts made by each failed call
    reasons: Counter[str] = Counter()
    done = 0
    restarted_at: float | None = None
    back_after: float | None = None
    sem = asyncio.Semaphore(32)
    started = time.monotonic()

    async def one(i: int) -> None:
        nonlocal done, unnamed, restarted_at, back_after
        async with sem:
            try:
                with dspy.context(lm=lm):
                    await qa.acall(question=f"question {i}?")
                outcomes["answered"] += 1
            except TGIError as exc:
                outcomes[type(exc).__name__] += 1
                notes = getattr(exc, "__notes__", [])
                tries[1 + sum(n.startswith("earlier attempt") for n in notes)] += 1
                for note in notes:
                    if note.startswith("gave up"):
                        reasons[note.split(": ", 1)[-1]] += 1
                if not names_replicas(exc, urls):
                    unnamed += 1
            done += 1
            if done == 3000:
                procs[healthy_port].send_signal(signal.SIGKILL)
                procs[healthy_port].wait()
            if done == 8000 and restarted_at is None:
                procs[healthy_port] = await asyncio.to_thread(start, healthy_port)
                restarted_at = time.monotonic()
            if restarted_at is not None and back_after is None:
                s = lm.stats()[healthy_url]
                if not s["ejected"] and s["successes"] > 0:
                    back_after = time.monotonic() - restarted_at

    try:
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(calls))), timeout)
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    answered = outcomes["answered"]
    print(f"calls: {calls}, elapsed {elapsed:.1f} s ({calls / elapsed:.0f} calls/s)")
    print(f"answered: {answered} ({100 * answered / calls:.2f}%)")
    for name, count in sorted(outcomes.items()):
        if name != "answered":
            print(f"  {name}: {count}")
    print(f"errors that name no known replica: {unnamed}")
    print(f"attempts made by failed calls: {dict(sorted(tries.items()))}; why: {dict(reasons)}")
    if back_after is None:
        print("restarted replica: not back in rotation by the end of the run")
    else:
        print(f"restarted replica back in rotation after {back_after:.2f} s")
    return 0 if answered >= 0.99 * calls and unnamed == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--max-attempts", type=int, default=None, help="default: the client's")
    parser.add_argument(
        "--drop-rate",
        type=float,
        default=0.15,
        help="dropped connections on the flaky replica (the sim drops /generate too, not only "
        "streams; 0 leaves malformed and truncated bodies, 30%% of /generate calls)",
    )
    args = parser.parse_args()
    os.environ.setdefault("TGISPY_CACHEDIR", "/tmp/tgispy-fault-run-cache")
    return asyncio.run(run(args.calls, args.timeout, args.max_attempts, args.drop_rate))


if __name__ == "__main__":
    sys.exit(main())
