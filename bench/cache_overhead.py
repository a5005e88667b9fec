"""Cache overhead on a miss-only run: the default cache vs cache=False, paired in one process.

Every prompt is new, so with the cache each call looks its key up (a miss) and stores the result
in the default cache (memory + disk write-behind, in a fresh $TGISPY_CACHEDIR per sample). The
goal (issue 14): the default cache costs <= 10%. ChainOfThought and `_generate`, sequential (sync)
and 32 in flight (async), against a loopback nginx answering one canned completion, so the client
and the cache are what is measured.

Each sample is one fresh interpreter in which a cache=False client and a default-cache client
take turns in short blocks (`_measure_cache_overhead.py`), so load from other processes hits
both alike; this machine is shared, and separate runs moved by far more than the 10% measured.
The cost is reported two ways: calls/s lost, and CPU per call added (every thread of the
process, the cache's disk writes included, flushed at the end of each cache block).

`--baseline REV` adds the same paired sample for another revision (this working tree with only
`src/tgispy/cache` taken from REV), alternating with this tree's, so before and after come from
one interleaved run.

usage: python bench/cache_overhead.py [--seconds 4] [--rounds 3] [--baseline REV]
       [--only program generate] [--modes seq conc] [--json-out FILE]
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
from typing import Any

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


def sample(src: Path | None, *args: str, timeout: float = 120) -> dict[str, Any]:
    """One paired measurement in a fresh interpreter, with its own cache directory."""
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
        what = f"_measure_cache_overhead.py {' '.join(args)}"
        raise RuntimeError(f"{what}: exit {proc.returncode}\n{tail}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if src is not None and not str(out["tgispy"]).startswith(str(src)):
        raise RuntimeError(f"the baseline imported {out['tgispy']}, not {src}")
    return dict(out)


def figures(out: dict[str, Any]) -> dict[str, float]:
    """calls/s and CPU us per call of each arm, and the cache's cost by each measure."""
    plain, cached = out["nocache"], out["cache"]
    f = {
        "rate_nocache": plain["calls"] / plain["wall_s"],
        "rate_cache": cached["calls"] / cached["wall_s"],
        "cpu_nocache": plain["cpu_s"] / plain["calls"] * 1e6,
        "cpu_cache": cached["cpu_s"] / cached["calls"] * 1e6,
    }
    f["rate_cost"] = 1 - f["rate_cache"] / f["rate_nocache"]
    f["cpu_cost"] = f["cpu_cache"] / f["cpu_nocache"] - 1
    return f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per sample, both arms")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also measure REV's src/tgispy/cache")
    parser.add_argument("--only", nargs="+", choices=list(APIS), default=list(APIS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--json-out", type=Path, help="write rows for run_all.py here")
    args = parser.parse_args()

    subjects: list[tuple[str, Path | None]] = [("tgispy", None)]
    base = None
    if args.baseline:
        base = baseline_src(args.baseline)
        subjects.append((f"tgispy, cache/ at {args.baseline}", base))
    cells = [(api, mode) for api in args.only for mode in args.modes]
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {
        (api, mode, name): [] for api, mode in cells for name, _ in subjects
    }
    try:
        with canned_nginx(BODY) as port:
            for r in range(args.rounds):
                for api, mode in cells:
                    for name, src in subjects:
                        f = figures(sample(src, api, mode, str(port), str(args.seconds)))
                        results[(api, mode, name)].append(f)
                        print(
                            f"round {r + 1}/{args.rounds}: {APIS[api]:14s} {MODES[mode]:12s} "
                            f"{name:32s} no cache {f['rate_nocache']:6.0f}/s "
                            f"{f['cpu_nocache']:4.0f} us CPU; cache {f['rate_cache']:6.0f}/s "
                            f"{f['cpu_cache']:4.0f} us CPU; cost {f['rate_cost']:+.0%} calls/s, "
                            f"{f['cpu_cost']:+.0%} CPU",
                            flush=True,
                        )
    finally:
        if base is not None:
            shutil.rmtree(base.parent, ignore_errors=True)

    print(
        "\n| calls | mode | subject | calls/s no cache | calls/s cache | CPU us/call no cache "
        "| CPU us/call cache | cost: calls/s | cost: CPU | n |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows: list[dict[str, object]] = []
    for api, mode in cells:
        for name, _ in subjects:
            samples = results[(api, mode, name)]
            med = {k: summarize([s[k] for s in samples])[0] for k in samples[0]}
            print(
                f"| {APIS[api]} | {MODES[mode]} | {name} | {med['rate_nocache']:,.0f} | "
                f"{med['rate_cache']:,.0f} | {med['cpu_nocache']:,.0f} | {med['cpu_cache']:,.0f} "
                f"| {med['rate_cost']:+.0%} | {med['cpu_cost']:+.1%} | {len(samples)} |"
            )
            rows.append(
                {
                    "scenario": f"default cache cost, miss-only: {APIS[api]}, {MODES[mode]}",
                    "subject": name,
                    "unit": "% CPU per call",
                    "samples": [100 * s["cpu_cost"] for s in samples],
                    "higher_is_better": False,
                    "vs": "target <= 10%",
                }
            )
    if args.json_out is not None:
        write_rows(args.json_out, rows)


if __name__ == "__main__":
    main()
