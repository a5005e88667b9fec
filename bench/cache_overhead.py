"""Cache overhead on a miss-only run: calls/s with the default cache vs cache=False.

Every prompt is new, so with the cache each call looks its key up (a miss) and stores the result
in the default cache (memory + disk write-behind, in a fresh $TGISPY_CACHEDIR per sample). The
goal (issue 14): the default cache costs <= 10%. ChainOfThought and `_generate`, sequential (sync)
and 32 in flight (async), against a loopback nginx answering one canned completion, so the client
and the cache are what is measured. Subjects take turns round by round; each sample runs in a
fresh interpreter. Reported per subject: calls/s, and CPU per call (every thread of the client
process, the cache's writes flushed at the end included), the steadier figure on a shared
machine, where other processes move wall-clock throughput by far more than 10%.

`--baseline REV` adds the default cache of another revision (this working tree with only
`src/tgispy/cache` taken from REV), so before and after are measured in one interleaved run.

usage: python bench/cache_overhead.py [--seconds 2] [--rounds 3] [--baseline REV]
       [--only program generate] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, canned_nginx, summarize, write_rows

COMPLETION = " produce the answer. We know Paris is the capital of France.\nAnswer: Paris"
BODY = json.dumps({"generated_text": COMPLETION})
APIS = {"program": "ChainOfThought", "generate": "_generate"}
MODES = {"seq": "sequential", "conc": "32 in flight"}


def baseline_src(rev: str) -> Path:
    """This working tree's src/ with src/tgispy/cache replaced by REV's (a temporary copy)."""
    tmp = Path(tempfile.mkdtemp(prefix="tgispy-cache-baseline-"))
    shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(tmp / "src" / "tgispy" / "cache")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src/tgispy/cache"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return tmp / "src"


def sample(src: Path | None, *args: str, timeout: float = 120) -> dict[str, float]:
    """One measurement in a fresh interpreter, with its own cache directory."""
    tmp = tempfile.mkdtemp(prefix="tgispy-bench-cache-")
    path = [str(src)] if src is not None else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*path, str(ROOT / "bench")]),
        "TGISPY_CACHEDIR": f"{tmp}/tgispy",
    }
    try:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "_measure_cache_overhead.py"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise RuntimeError(
            f"_measure_cache_overhead.py {' '.join(args)}: exit {proc.returncode}\n{tail}"
        )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if src is not None and not str(out["tgispy"]).startswith(str(src)):
        raise RuntimeError(f"the baseline imported {out['tgispy']}, not {src}")
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also measure REV's src/tgispy/cache")
    parser.add_argument("--only", nargs="+", choices=list(APIS), default=list(APIS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--json-out", type=Path, help="write rows for run_all.py here")
    args = parser.parse_args()

    subjects: list[tuple[str, Path | None, str]] = [
        ("no cache", None, "nocache"),
        ("default cache", None, "cache"),
    ]
    base = None
    if args.baseline:
        base = baseline_src(args.baseline)
        subjects.append((f"default cache, cache/ at {args.baseline}", base, "cache"))
    cells = [(api, mode) for api in args.only for mode in args.modes]
    rates: dict[tuple[str, str, str], list[float]] = {
        (api, mode, name): [] for api, mode in cells for name, _, _ in subjects
    }
    cpus: dict[tuple[str, str, str], list[float]] = {k: [] for k in rates}
    try:
        with canned_nginx(BODY) as port:
            for r in range(args.rounds):
                for api, mode in cells:
                    for name, src, cache in subjects:
                        out = sample(src, api, mode, cache, str(port), str(args.seconds))
                        rates[(api, mode, name)].append(out["calls_per_s"])
                        cpus[(api, mode, name)].append(out["cpu_us_per_call"])
                        print(
                            f"round {r + 1}/{args.rounds}: {APIS[api]:14s} {MODES[mode]:12s} "
                            f"{name:40s} {out['calls_per_s']:8.0f}/s "
                            f"{out['cpu_us_per_call']:6.0f} us CPU/call",
                            flush=True,
                        )
    finally:
        if base is not None:
            shutil.rmtree(base.parent, ignore_errors=True)

    print(
        "\n| calls | mode | subject | calls/s | spread | vs no cache | CPU us/call | spread "
        "| cost vs no cache |"
    )
    print("|---|---|---|---:|---:|---|---:|---:|---|")
    rows: list[dict[str, object]] = []
    for api, mode in cells:
        plain_rate = summarize(rates[(api, mode, "no cache")])[0]
        plain_cpu = summarize(cpus[(api, mode, "no cache")])[0]
        scenario = f"cache overhead, miss-only: {APIS[api]}, {MODES[mode]}"
        for name, _, _ in subjects:
            rate, rate_spread = summarize(rates[(api, mode, name)])
            cpu, cpu_spread = summarize(cpus[(api, mode, name)])
            plain = name == "no cache"
            vs_rate = "-" if plain else f"{rate / plain_rate:.2f}"
            cost = "-" if plain else f"{cpu / plain_cpu - 1:+.0%}"
            print(
                f"| {APIS[api]} | {MODES[mode]} | {name} | {rate:,.0f} | {rate_spread:.0%} | "
                f"{vs_rate} | {cpu:,.0f} | {cpu_spread:.0%} | {cost} |"
            )
            for metric, unit, samples, better in (
                ("calls/s", "calls/s", rates[(api, mode, name)], True),
                ("CPU per call", "us", cpus[(api, mode, name)], False),
            ):
                row: dict[str, object] = {
                    "scenario": f"{scenario} ({metric})",
                    "subject": name,
                    "unit": unit,
                    "samples": samples,
                    "higher_is_better": better,
                }
                if not plain:
                    ratio = rate / plain_rate if better else cpu / plain_cpu
                    row["vs"] = f"{ratio:.2f} of no cache (target: cost <= 10%)"
                rows.append(row)
    if args.json_out is not None:
        write_rows(args.json_out, rows)


if __name__ == "__main__":
    main()
