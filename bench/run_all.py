"""`tgispy bench`: every benchmark against its anchors, interleaved, in one run; writes a report.

Sets up what it needs (a loopback nginx from Debian returning canned TGI bodies, `tgispy serve`
replicas, venvs for DSPy 2.4.17 and DSPy 3.4 under .bench/), runs each scenario for tgispy and its
anchors round-robin so machine noise hits them alike, and writes bench/results/<date>.md (median,
spread, ratios vs each anchor) and a PNG chart. Everything is loopback-only and bounded in time.

usage: python bench/run_all.py [--quick] [--only NAME ...] [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, anchor_python, canned_nginx, run_json, summarize

RESULTS = ROOT / "bench" / "results"
COT_COMPLETION = " produce the answer. We know Paris is the capital of France.\nAnswer: Paris"


@dataclass
class Row:
    scenario: str
    subject: str
    unit: str
    samples: list[float] = field(default_factory=list)
    anchor_of: str | None = None  # the subject this row is an anchor for (ratios computed vs it)
    higher_is_better: bool = True


class Report:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.notes: list[str] = []

    def add(
        self, scenario: str, subject: str, unit: str, value: float, *, higher: bool = True
    ) -> None:
        row = self.rows.setdefault(
            (scenario, subject), Row(scenario, subject, unit, higher_is_better=higher)
        )
        row.samples.append(value)
        print(f"  {scenario:38s} {subject:28s} {value:12,.1f} {unit}", flush=True)

    def markdown(self, header: str) -> str:
        lines = [header, "", "| scenario | subject | median | spread | unit | vs tgispy |"]
        lines.append("|---|---|---|---|---|---|")
        by_scenario: dict[str, list[Row]] = {}
        for row in self.rows.values():
            by_scenario.setdefault(row.scenario, []).append(row)
        for scenario, rows in by_scenario.items():
            ours = next((r for r in rows if r.subject.startswith("tgispy")), None)
            ours_med = summarize(ours.samples)[0] if ours else None
            scaling = scenario.startswith("fleet: calls/s")
            for row in rows:
                med, spread = summarize(row.samples)
                ratio = "-"
                if scaling and ours_med and row is not ours:
                    ratio = f"{med / ours_med:.2f}x of K=1"
                elif ours_med and row is not ours and med:
                    r = ours_med / med if row.higher_is_better else med / ours_med
                    ratio = f"tgispy {r:.1f}x"
                lines.append(
                    f"| {scenario} | {row.subject} | {med:,.1f} | {spread:.0%} | {row.unit} "
                    f"| {ratio} |"
                )
        lines += ["", *self.notes]
        return "\n".join(lines)


# ---- scenarios ---------------------------------------------------------------------------------
def import_time(report: Report, rounds: int, dspy24: str | None) -> None:
    def measure(python: str, module: str) -> float:
        start = time.perf_counter()
        subprocess.run([python, "-c", f"import {module}"], check=True, capture_output=True)
        return (time.perf_counter() - start) * 1000

    subjects = [("tgispy", sys.executable, "tgispy")]
    if dspy24:
        subjects.append(("dspy 2.4.17", dspy24, "dspy"))
    for _ in range(rounds):
        for subject, python, module in subjects:
            startup = measure(python, "sys")  # interpreter start-up, subtracted
            value = measure(python, module) - startup
            report.add("import time", subject, "ms", value, higher=False)


def client_overhead(
    report: Report, rounds: int, seconds: float, port: int, dspy24: str | None
) -> None:
    cases = [
        ("aiohttp (raw)", sys.executable, "aiohttp", "seq"),
        ("tgispy", sys.executable, "tgispy", "seq"),
        ("aiohttp (raw)", sys.executable, "aiohttp", "conc"),
        ("tgispy", sys.executable, "tgispy", "conc"),
        ("text-generation AsyncClient", sys.executable, "text-generation", "conc"),
    ]
    if dspy24:
        cases += [
            ("dspy 2.4.17", dspy24, "dspy24", "seq"),
            ("dspy 2.4.17", dspy24, "dspy24", "conc"),
        ]
    for _ in range(rounds):
        for subject, python, tool, mode in cases:
            out = run_json(python, "_measure_client.py", tool, mode, str(port), str(seconds))
            scenario = "_generate, " + ("sequential" if mode == "seq" else "32 in flight")
            report.add(scenario, subject, "calls/s", out["calls_per_s"])


def program_overhead(
    report: Report, rounds: int, seconds: float, port: int, dspy24: str | None
) -> None:
    cases = [("tgispy", sys.executable, "tgispy")]
    if dspy24:
        cases.append(("dspy 2.4.17", dspy24, "dspy24"))
    for _ in range(rounds):
        for cache in (False, True):
            for mode in ("seq", "conc"):
                for subject, python, tool in cases:
                    out = run_json(
                        python,
                        "_measure_program.py",
                        tool,
                        mode,
                        str(port),
                        str(seconds),
                        cache=cache,
                    )
                    scenario = "ChainOfThought, " + (
                        "sequential" if mode == "seq" else "32 in flight"
                    )
                    scenario += ", default cache" if cache else ", no cache"
                    report.add(scenario, subject, "calls/s", out["calls_per_s"])


def cache_hit(report: Report, rounds: int, port: int) -> None:
    for _ in range(rounds):
        out = run_json(sys.executable, "_measure_cache.py", str(port), cache=True)
        report.add("cache hit latency (memory tier)", "tgispy", "us", out["hit_us"], higher=False)


def evaluate_scenario(report: Report, rounds: int, examples: int, dspy24: str | None) -> None:
    """Evaluate(num_threads=32) of ChainOfThought over a devset (bench/evaluate.py's setup)."""
    from evaluate import CHAT_BODY, GENERATE_BODY, dspy3_available

    cases = [("tgispy", sys.executable, "tgispy")]
    if dspy24:
        cases.append(("dspy 2.4.17", dspy24, "dspy24"))
    if dspy3_available():
        cases.append(("dspy 3.4 (LiteLLM, Messages API)", sys.executable, "dspy34"))
    scenario = f"Evaluate(num_threads=32), {examples} examples"
    with canned_nginx(GENERATE_BODY) as port, canned_nginx(CHAT_BODY) as chat_port:
        for _ in range(rounds):
            for subject, python, tool in cases:
                p = chat_port if tool == "dspy34" else port
                out = run_json(python, "_measure_evaluate.py", tool, str(p), str(examples), "32")
                report.add(scenario, subject, "examples/s", out["examples_per_s"])


def fleet_scenario(report: Report, quick: bool) -> None:
    """Fleet scaling (K = 1, 2, 4 sim replicas) and tail latency with one slow replica."""
    out_file = RESULTS / ".fleet.json"
    args = ["--rounds", "1", "--no-write", "--json", str(out_file)]
    if quick:
        args += ["--calls-per-replica", "120", "--latency-calls", "240"]
    subprocess.run([sys.executable, str(ROOT / "bench" / "fleet.py"), *args], check=True)
    raw = json.loads(out_file.read_text())
    out_file.unlink(missing_ok=True)
    for k, samples in sorted(raw["throughput"].items(), key=lambda kv: int(kv[0])):
        for value in samples:
            report.add("fleet: calls/s with K sim replicas", f"tgispy, K={k}", "calls/s", value)
    for strategy, rows in raw["latency"].items():
        for row in rows:
            report.add(
                "fleet: p99 latency, 1 of 4 replicas 10x slower",
                strategy,
                "ms",
                row["p99"] * 1000,
                higher=False,
            )


def server_scenario(report: Report, quick: bool) -> None:
    """Embedded server (real SmolLM2): engine tok/s vs HTTP at 1/4/8 streams; sim request rate."""
    out_file = RESULTS / ".server.json"
    args = ["--json-out", str(out_file)]
    args += ["--rounds", "1", "--single-requests", "2", "--sim-requests", "1000"] if quick else []
    subprocess.run([sys.executable, str(ROOT / "bench" / "server.py"), *args], check=True)
    for row in json.loads(out_file.read_text()):
        for value in row["samples"]:
            report.add(row["scenario"], row["subject"], row["unit"], float(value))
    out_file.unlink(missing_ok=True)


def chart(report: Report, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: installing it for the chart (bench only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=False)
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return False
    scenarios: dict[str, list[Row]] = {}
    for row in report.rows.values():
        if row.unit in ("calls/s", "tok/s"):
            scenarios.setdefault(row.scenario, []).append(row)
    if not scenarios:
        return False
    fig, axes = plt.subplots(len(scenarios), 1, figsize=(9, 1.6 * len(scenarios) + 1))
    if len(scenarios) == 1:
        axes = [axes]
    for ax, (scenario, rows) in zip(axes, scenarios.items(), strict=True):
        names = [r.subject for r in rows]
        values = [summarize(r.samples)[0] for r in rows]
        colors = ["#d9534f" if n.startswith("tgispy") else "#999999" for n in names]
        ax.barh(names, values, color=colors)
        ax.set_title(f"{scenario} ({rows[0].unit}, higher is better)", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (<5 min)")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--skip", nargs="*", default=[])
    parser.add_argument("--no-anchors", action="store_true", help="skip the DSPy venvs")
    args = parser.parse_args(argv)
    rounds, seconds = (1, 1.0) if args.quick else (3, 3.0)

    def wanted(name: str) -> bool:
        return (args.only is None or name in args.only) and name not in args.skip

    RESULTS.mkdir(parents=True, exist_ok=True)
    dspy24 = None if args.no_anchors else anchor_python("dspy24", ["dspy-ai==2.4.17"])
    report = Report()
    started = time.monotonic()
    if wanted("import"):
        print("== import time", flush=True)
        import_time(report, 3 if args.quick else 7, dspy24)
    if wanted("client") or wanted("program") or wanted("cache"):
        with canned_nginx() as port:
            if wanted("client"):
                print("== client overhead (canned nginx)", flush=True)
                client_overhead(report, rounds, seconds, port, dspy24)
            if wanted("cache"):
                print("== cache hit latency", flush=True)
                cache_hit(report, rounds, port)
        if wanted("program"):
            body = json.dumps({"generated_text": COT_COMPLETION})
            with canned_nginx(body) as port:
                print("== program overhead (canned nginx)", flush=True)
                program_overhead(report, rounds, seconds, port, dspy24)
    if wanted("evaluate"):
        print("== Evaluate (canned nginx)", flush=True)
        evaluate_scenario(report, rounds, 500 if args.quick else 2000, dspy24)
    if wanted("fleet"):
        print("== fleet (sim replicas)", flush=True)
        fleet_scenario(report, args.quick)
    if wanted("server"):
        print("== embedded server (real model)", flush=True)
        server_scenario(report, args.quick)
    report.notes.append(
        "- DSPy 3.4 with tgispy as its engine vs its own engines: `bench/dspy3.py` (not run here)."
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report.notes.append(f"- peak RSS of any benchmark process: {peak:,.0f} MiB")
    elapsed = time.monotonic() - started
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    header = (
        f"# tgispy bench, {stamp}{' (quick)' if args.quick else ''}\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}. One run, scenarios interleaved; "
        f"median of {rounds} round(s); spread = (max - min) / median. Took {elapsed:,.0f} s."
    )
    md_path = RESULTS / f"{stamp}.md"
    png_path = RESULTS / f"{stamp}.png"
    text = report.markdown(header)
    if chart(report, png_path):
        text += f"\n\n![chart]({png_path.name})\n"
    md_path.write_text(text + "\n")
    print("\n" + text)
    print(f"\nwrote {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
