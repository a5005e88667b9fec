"""`tgispy bench`: every benchmark against its anchors, interleaved, in one run; writes a report.

Sets up what it needs (a loopback nginx from Debian returning canned TGI bodies, `tgispy serve`
replicas, venvs for DSPy 2.4.17 and DSPy 3.4.1 under .bench/venvs, made on first use and reused),
runs each scenario for tgispy and its anchors round-robin so machine noise hits them alike, and
writes bench/results/<date>.md (median, spread, ratio vs each anchor) and <date>.png (a chart);
``--quick`` writes <date>-quick.md/.png instead, so it never overwrites a full run's report.
Everything is loopback-only and every scenario is bounded in time: a scenario that fails or runs
out of time is reported as such and the run goes on.

Scenarios (``--only`` / ``--skip`` take these names):

  import    import time: tgispy, DSPy 2.4.17, DSPy 3.4.1
  client    `_generate` sequential and 32 in flight: raw aiohttp, tgispy, text-generation's
            AsyncClient, DSPy 2.4.17's HFClientTGI
  program   ChainOfThought sequential and 32 in flight (no cache and each library's default
            cache): tgispy, DSPy 2.4.17, DSPy 3.4.1's dspy.LM on the Messages API; peak RSS
  engines   `_generate`/`__call__` and ChainOfThought on a canned vLLM (/v1/completions):
            tgispy's HFClientVLLM and OpenAI(api_base=...) vs DSPy 2.4.17's, raw aiohttp
  dspy3     DSPy 3.4 ChainOfThought with tgispy's engine vs DSPy's default and LiteLLM engines
  evaluate  Evaluate(num_threads=32) over 2,000 examples: tgispy, DSPy 2.4.17, DSPy 3.4.1
  fleet     K = 1, 2, 4 sim replicas; p99 with one slow replica vs uniform random routing
  server    embedded server (SmolLM2 on llama.cpp) tok/s at 1/4/8 streams vs the bare engine
  cache     cache hit latency (memory tier)

usage: python bench/run_all.py [--quick] [--only NAME ...] [--skip NAME ...] [--no-anchors]
                               [--name NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    bench_row,
    canned_nginx,
    dspy24_python,
    dspy34_python,
    progress,
    run_json,
    summarize,
)

RESULTS = ROOT / "bench" / "results"
COT_COMPLETION = " produce the answer. We know Paris is the capital of France.\nAnswer: Paris"
DSPY24 = "dspy 2.4.17"
DSPY34 = "dspy 3.4.1 (dspy.LM, Messages API)"


# ---- the report --------------------------------------------------------------------------------
@dataclass
class Row:
    scenario: str
    subject: str
    unit: str
    samples: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    vs: str | None = None  # set by a script for a ratio the generic rule cannot express

    @property
    def ours(self) -> bool:
        return self.subject.startswith("tgispy")

    @property
    def median(self) -> float:
        return summarize(self.samples)[0]

    def to_json(self) -> dict[str, object]:
        """The ``--json-out`` row format (what :meth:`Report.add_rows` reads back)."""
        row = bench_row(
            self.scenario,
            self.subject,
            self.unit,
            self.samples,
            higher_is_better=self.higher_is_better,
        )
        if self.vs is not None:
            row["vs"] = self.vs
        return row


class Report:
    """Rows keyed by (scenario, subject) in the order first measured, plus notes and failures."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.timings: dict[str, float] = {}

    def add(
        self,
        scenario: str,
        subject: str,
        unit: str,
        value: float,
        *,
        higher: bool = True,
        where: str = "",
    ) -> None:
        row = self.rows.setdefault(
            (scenario, subject), Row(scenario, subject, unit, higher_is_better=higher)
        )
        row.samples.append(value)
        progress(f"{where} · {scenario} · {subject}: {_num(value)} {unit}")

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Rows from a script's ``--json-out`` file."""
        for raw in rows:
            key = (raw["scenario"], raw["subject"])
            row = self.rows.setdefault(
                key,
                Row(*key, raw["unit"], higher_is_better=bool(raw.get("higher_is_better", True))),
            )
            row.samples.extend(float(s) for s in raw["samples"])
            row.vs = raw.get("vs", row.vs)

    def scenarios(self) -> dict[str, list[Row]]:
        by_scenario: dict[str, list[Row]] = {}
        for row in self.rows.values():
            if row.samples:
                by_scenario.setdefault(row.scenario, []).append(row)
        # Peak memory last, after the speed scenarios it was measured in.
        return dict(sorted(by_scenario.items(), key=lambda kv: kv[0].startswith("peak RSS")))

    def markdown(self, header: str) -> str:
        lines = [
            header,
            "",
            "| scenario | subject | median | spread | n | unit | vs tgispy |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for scenario, rows in self.scenarios().items():
            primary = next((r for r in rows if r.ours), None)
            for row in rows:
                _, spread = summarize(row.samples)
                spread_text = f"{spread:.0%}" if len(row.samples) > 1 else "-"
                subject = f"**{row.subject}**" if row.ours else row.subject
                lines.append(
                    f"| {scenario} | {subject} | {_num(row.median)} | {spread_text} "
                    f"| {len(row.samples)} | {row.unit} | {ratio_text(row, primary)} |"
                )
        lines.append("")
        if self.failures:
            lines += ["**Failed or cut short:**", "", *[f"- {f}" for f in self.failures], ""]
        lines += self.notes
        return "\n".join(lines)


def ratio(row: Row, primary: Row) -> float:
    """How many times better ``primary`` (tgispy) is than ``row``: > 1 means tgispy wins."""
    if not row.median or not primary.median:
        return math.nan
    if row.higher_is_better:
        return primary.median / row.median
    return row.median / primary.median


def ratio_text(row: Row, primary: Row | None) -> str:
    if row.vs is not None:
        return row.vs
    if primary is None or row is primary:
        return "-"
    if row.ours:  # another tgispy configuration: relative to the first one
        return f"{row.median / primary.median:.2f}x of {primary.subject}"
    return f"tgispy {_times(ratio(row, primary))}"


def _times(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.0f}x" if value >= 20 else f"{value:.1f}x" if value >= 1 else f"{value:.2f}x"


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


# ---- scenarios ---------------------------------------------------------------------------------
@dataclass
class Context:
    report: Report
    quick: bool
    rounds: int  # of the scenarios measured here
    script_rounds: int  # of the scripts run through external()
    seconds: float
    dspy24: str | None
    dspy34: str | None


def import_time(ctx: Context) -> None:
    def measure(python: str, module: str) -> float:
        start = time.perf_counter()
        subprocess.run(
            [python, "-c", f"import {module}"], check=True, capture_output=True, timeout=60
        )
        return (time.perf_counter() - start) * 1000

    subjects = [("tgispy", sys.executable, "tgispy")]
    if ctx.dspy24:
        subjects.append((DSPY24, ctx.dspy24, "dspy"))
    if ctx.dspy34:
        subjects.append(("dspy 3.4.1", ctx.dspy34, "dspy"))
    rounds = 3 if ctx.quick else 7
    for r in range(rounds):
        for subject, python, module in subjects:
            startup = measure(python, "sys")  # interpreter start-up, subtracted
            value = measure(python, module) - startup
            ctx.report.add(
                "import time", subject, "ms", value, higher=False, where=f"round {r + 1}/{rounds}"
            )


def client_overhead(ctx: Context) -> None:
    cases = [
        ("aiohttp (raw)", sys.executable, "aiohttp", "seq"),
        ("tgispy", sys.executable, "tgispy", "seq"),
        ("tgispy[speed]", sys.executable, "tgispy-speed", "seq"),
        ("aiohttp (raw)", sys.executable, "aiohttp", "conc"),
        ("tgispy", sys.executable, "tgispy", "conc"),
        ("tgispy[speed]", sys.executable, "tgispy-speed", "conc"),
        ("text-generation AsyncClient", sys.executable, "text-generation", "conc"),
    ]
    if ctx.dspy24:
        cases += [
            (DSPY24, ctx.dspy24, "dspy24", "seq"),
            (f"{DSPY24} (32 threads)", ctx.dspy24, "dspy24", "conc"),
        ]
    with canned_nginx() as port:
        for r in range(ctx.rounds):
            for subject, python, tool, mode in cases:
                out = run_json(
                    python,
                    "_measure_client.py",
                    tool,
                    mode,
                    str(port),
                    str(ctx.seconds),
                    timeout=60 + ctx.seconds,
                )
                scenario = "_generate, " + ("sequential" if mode == "seq" else "32 in flight")
                ctx.report.add(
                    scenario,
                    subject,
                    "calls/s",
                    out["calls_per_s"],
                    where=f"round {r + 1}/{ctx.rounds}",
                )


def program_overhead(ctx: Context) -> None:
    """ChainOfThought; tgispy and DSPy 2.4 on /generate, DSPy 3.4's dspy.LM on the Messages API.

    The canned completion holds every output field, so each call is one request. DSPy 3.4 has
    no default-cache variant here: its cache is not comparable (in memory, keyed differently).
    """
    from dspy3 import CHAT_BODY

    # (subject, its name at 32 in flight, python, measure args, speaks the Messages API)
    cases: list[tuple[str, str, str, list[str], bool]] = [
        ("tgispy", "tgispy", sys.executable, ["tgispy"], False),
        ("tgispy[speed]", "tgispy[speed]", sys.executable, ["tgispy-speed"], False),
    ]
    if ctx.dspy24:
        cases.append((DSPY24, f"{DSPY24} (32 threads)", ctx.dspy24, ["dspy24"], False))
    if ctx.dspy34:
        threads = DSPY34.replace(")", ", 32 threads)")
        cases.append((DSPY34, threads, ctx.dspy34, ["--measure", "auto"], True))
    body = json.dumps({"generated_text": COT_COMPLETION})
    with canned_nginx(body) as port, canned_nginx(CHAT_BODY) as chat_port:
        for r in range(ctx.rounds):
            for cache in (False, True):
                for mode in ("seq", "conc"):
                    for subject, conc_subject, python, tool, chat in cases:
                        if chat and cache:
                            continue
                        if chat:  # dspy3.py --measure auto {seq|threads} PORT SECONDS
                            script = "dspy3.py"
                            args = [*tool, "seq" if mode == "seq" else "threads", str(chat_port)]
                        else:
                            script, args = "_measure_program.py", [*tool, mode, str(port)]
                        out = run_json(
                            python,
                            script,
                            *args,
                            str(ctx.seconds),
                            cache=cache,
                            timeout=90 + ctx.seconds,
                        )
                        how = "sequential" if mode == "seq" else "32 in flight"
                        scenario = f"ChainOfThought, {how}, " + (
                            "default cache" if cache else "no cache"
                        )
                        label = subject if mode == "seq" else conc_subject
                        where = f"round {r + 1}/{ctx.rounds}"
                        ctx.report.add(scenario, label, "calls/s", out["calls_per_s"], where=where)
                        if mode == "conc" and not cache:
                            ctx.report.add(
                                "peak RSS, ChainOfThought 32 in flight, no cache",
                                subject,
                                "MiB",
                                out["peak_rss_mib"],
                                higher=False,
                                where=where,
                            )


def cache_hit(ctx: Context) -> None:
    with canned_nginx() as port:
        for r in range(ctx.rounds):
            out = run_json(sys.executable, "_measure_cache.py", str(port), cache=True, timeout=60)
            ctx.report.add(
                "cache hit latency (memory tier)",
                "tgispy",
                "us",
                out["hit_us"],
                higher=False,
                where=f"round {r + 1}/{ctx.rounds}",
            )


def external(ctx: Context, script: str, args: list[str], timeout: float) -> None:
    """Run another bench script with ``--json-out`` (and ``--quick``); add the rows it writes.

    Its output streams through as progress. It runs in its own process group so that on timeout
    the servers it started go down with it.
    """
    out_file = RESULTS / f".{Path(script).stem}.json"
    out_file.unlink(missing_ok=True)
    cmd = [sys.executable, str(ROOT / "bench" / script), "--json-out", str(out_file), *args]
    if ctx.quick:
        cmd.append("--quick")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bench")}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise TimeoutError(f"bench/{script}: stopped after {timeout:.0f} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    if out_file.exists():
        ctx.report.add_rows(json.loads(out_file.read_text()))
        out_file.unlink()
    if rc:
        raise RuntimeError(f"bench/{script} exited with {rc} (its rows, if any, are kept)")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def engine_clients(ctx: Context) -> None:
    """bench/engines.py: the rounds and sample length of the scenarios measured here."""
    args = ["--rounds", str(ctx.rounds), "--seconds", str(ctx.seconds)]
    if ctx.dspy24 is None:
        args.append("--no-anchors")
    external(ctx, "engines.py", args, timeout=300 if ctx.quick else 600)


def dspy3_engines(ctx: Context) -> None:
    if ctx.dspy34 is None:
        ctx.report.notes.append("- dspy3: not run (--no-anchors; it needs the DSPy 3.4 venv).")
        progress("dspy3 · skipped: it needs the DSPy 3.4 venv (--no-anchors)")
        return
    args = ["--rounds", str(ctx.script_rounds)]
    external(ctx, "dspy3.py", args, timeout=150 if ctx.quick else 400)


def evaluate(ctx: Context) -> None:
    args = ["--rounds", str(ctx.script_rounds)]
    if ctx.dspy24 is None:
        args.append("--no-anchors")
    external(ctx, "evaluate.py", args, timeout=150 if ctx.quick else 400)


def fleet(ctx: Context) -> None:
    args = ["--rounds", str(ctx.script_rounds), "--no-write"]
    external(ctx, "fleet.py", args, timeout=150 if ctx.quick else 500)


def server(ctx: Context) -> None:
    # One llama.cpp thread: with two on this 2-core machine, llama.cpp's threads spin-wait for
    # each other and, while any other process holds a core, generation drops from ~140 to
    # ~1 tok/s (measured); one thread keeps its fair share and leaves a core to the HTTP front.
    # The model part also gets its own time budget; the sim part after it takes seconds.
    args = ["--rounds", str(ctx.script_rounds), "--threads", "1"]
    args += ["--max-seconds", "60" if ctx.quick else "360"]
    external(ctx, "server.py", args, timeout=120 if ctx.quick else 520)


SCENARIOS: dict[str, tuple[str, Callable[[Context], None]]] = {
    "import": ("import time", import_time),
    "client": ("_generate overhead (canned nginx)", client_overhead),
    "program": ("ChainOfThought overhead (canned nginx)", program_overhead),
    "engines": ("engine clients on a canned vLLM (bench/engines.py)", engine_clients),
    "dspy3": ("DSPy 3.4 engines (bench/dspy3.py)", dspy3_engines),
    "evaluate": ("Evaluate over 2,000 examples (bench/evaluate.py)", evaluate),
    "fleet": ("fleet of sim replicas (bench/fleet.py)", fleet),
    "server": ("embedded server, real model (bench/server.py)", server),
    "cache": ("cache hit latency", cache_hit),
}


# ---- chart ----------------------------------------------------------------------------------
#: Anchors tgispy runs on top of (raw HTTP, the bare engine): the ratio is the share reached.
CEILINGS = ("aiohttp (raw)", "llama.cpp engine (no HTTP)")


def chart(report: Report, path: Path, title: str) -> bool:
    """Ratio of tgispy vs every anchor (log scale), fleet scaling, and server tok/s."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (`.venv/bin/pip install matplotlib`)")
        return False
    scenarios = report.scenarios()
    bars: list[tuple[str, float, bool]] = []  # label, ratio, is a ceiling
    for scenario, rows in scenarios.items():
        primary = next((r for r in rows if r.ours), None)
        if primary is None:
            continue
        for row in rows:
            r = ratio(row, primary)
            if not row.ours and row.vs is None and not math.isnan(r):
                bars.append((f"{scenario}  vs  {row.subject}", r, row.subject in CEILINGS))
    scaling = scenarios.get("fleet: calls/s with K sim replicas (p2c)", [])
    server = {s: r for s, r in scenarios.items() if s.startswith("embedded server")}
    bottom = bool(scaling) or bool(server)
    if not bars and not bottom:
        return False
    top_h = 0.3 * len(bars) + 1.0 if bars else 0.0
    bottom_h = 3.4 if bottom else 0.0
    fig = plt.figure(figsize=(13, top_h + bottom_h + 0.4))
    fig.suptitle(title, fontsize=10.5, x=0.01, y=0.995, ha="left", va="top")
    subfigs = fig.subfigures(
        2 if bars and bottom else 1,
        1,
        height_ratios=[top_h, bottom_h] if bars and bottom else None,
        squeeze=False,
    )[:, 0]
    if bars:
        ax = subfigs[0].subplots()
        # Room on the left for the long "scenario vs anchor" labels, inside the figure.
        subfigs[0].subplots_adjust(left=0.40, right=0.97, top=1 - 0.75 / top_h, bottom=0.5 / top_h)
        labels = [label for label, _, _ in bars][::-1]
        values = [r for _, r, _ in bars][::-1]
        colors = [
            "#5b8db8" if ceiling else "#2e8b57" if r >= 1 else "#d9534f" for _, r, ceiling in bars
        ][::-1]
        ax.barh(labels, values, color=colors)
        ax.set_xscale("log")
        ticks = [t for t in (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100) if t <= max(values) * 1.8]
        ax.set_xticks(ticks, [f"{t:g}x" for t in ticks], fontsize=8)
        ax.minorticks_off()
        ax.axvline(1.0, color="#333333", linewidth=0.8)
        for y, v in enumerate(values):
            ax.text(v * 1.04, y, _times(v), va="center", fontsize=7.5)
        ax.set_xlim(min([*values, 0.5]) * 0.7, max([*values, 2.0]) * 1.8)
        ax.set_ylim(-0.6, len(values) - 0.4)
        ax.tick_params(axis="y", labelsize=7.5)
        ax.set_title(
            "tgispy vs each anchor in the same run: times better, log scale (green: tgispy "
            "faster or smaller; red: the anchor wins;\nblue: a ceiling tgispy runs on, raw "
            "aiohttp or the bare llama.cpp engine, where the bar is the share of it tgispy keeps)",
            fontsize=8.5,
            loc="left",
        )
    if bottom:
        axes = subfigs[-1].subplots(1, 2)
        subfigs[-1].subplots_adjust(left=0.07, right=0.97, top=0.88, bottom=0.16, wspace=0.22)
        if scaling:
            ax = axes[0]
            ks = [int(r.subject.rsplit("=", 1)[1]) for r in scaling]
            rates = [r.median for r in scaling]
            one = rates[ks.index(1)] if 1 in ks else rates[0]
            spread = [
                [r.median - min(r.samples) for r in scaling],
                [max(r.samples) - r.median for r in scaling],
            ]
            ax.errorbar(
                ks, rates, yerr=spread, fmt="o-", color="#2e8b57", capsize=2, label="tgispy (p2c)"
            )
            ax.plot(ks, [k * one for k in ks], "--", color="#999999", label="K x one replica")
            ax.plot(ks, [0.9 * k * one for k in ks], ":", color="#999999", label="0.9 x K x one")
            ax.set_xticks(ks)
            ax.set_xlabel("sim replicas K", fontsize=8)
            ax.set_ylabel("calls/s", fontsize=8)
            ax.set_title("fleet scaling (target: >= 0.9 x K x one)", fontsize=9, loc="left")
            ax.legend(fontsize=7)
        else:
            axes[0].axis("off")
        if server:
            ax = axes[1]
            subjects = list(dict.fromkeys(r.subject for rows in server.values() for r in rows))
            width = 0.8 / max(len(subjects), 1)
            palette = ["#5b8db8", "#2e8b57", "#8fc79a"]
            top = 0.0
            for i, subject in enumerate(subjects):
                xs, ys, lo, hi = [], [], [], []
                for x, rows in enumerate(server.values()):
                    match = [r for r in rows if r.subject == subject]
                    if match:
                        xs.append(x + (i - (len(subjects) - 1) / 2) * width)
                        ys.append(match[0].median)
                        lo.append(match[0].median - min(match[0].samples))
                        hi.append(max(match[0].samples) - match[0].median)
                        top = max(top, max(match[0].samples))
                ax.bar(
                    xs,
                    ys,
                    width,
                    yerr=[lo, hi],
                    capsize=2,
                    error_kw={"linewidth": 0.8},
                    label=subject,
                    color=palette[i % len(palette)],
                )
            ax.set_ylim(0, top * 1.3)
            names = [s.rsplit(", ", 1)[1] for s in server]
            ax.set_xticks(range(len(server)), names, fontsize=8)
            ax.set_ylabel("generated tok/s", fontsize=8)
            ax.set_title("embedded server: SmolLM2-135M, 1 thread", fontsize=9, loc="left")
            ax.legend(fontsize=7, loc="upper center", ncol=len(subjects))
        else:
            axes[1].axis("off")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# ---- main --------------------------------------------------------------------------------------
def machine() -> str:
    """CPU model, cores, Python and OS of this machine, for the report header."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform(terse=True)}"
    )


def render(data: dict[str, Any]) -> Path:
    """Write <name>.md and <name>.png from a run's data (what <name>.json holds)."""
    report = Report()
    report.add_rows(data["rows"])
    report.failures, report.notes = data["failures"], data["notes"]
    quick = " (--quick)" if data["quick"] else ""
    header = (
        f"# tgispy bench, {data['date']}{quick}\n\n"
        f"Machine: {data['machine']}; shared with other work while it ran. One run of "
        f"`tgispy bench{' --quick' if data['quick'] else ''}`, tgispy and its anchors "
        "interleaved round by round; median of n rounds (the n column); "
        f"spread = (max - min) / median. Took {data['seconds'] / 60:.1f} minutes."
    )
    md_path = RESULTS / f"{data['name']}.md"
    png_path = md_path.with_suffix(".png")
    text = report.markdown(header)
    title = f"tgispy bench{quick}, {data['date']}: {data['machine']}"
    if chart(report, png_path, title):
        text += f"\n\n![tgispy bench chart]({png_path.name})\n"
    md_path.write_text(text + "\n")
    print("\n" + text)
    return md_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="scenarios: " + ", ".join(SCENARIOS),
    )
    parser.add_argument("--quick", action="store_true", help="short rounds (< 5 minutes)")
    parser.add_argument(
        "--only", nargs="+", choices=list(SCENARIOS), metavar="NAME", help="run only these"
    )
    parser.add_argument(
        "--skip", nargs="+", choices=list(SCENARIOS), metavar="NAME", default=[], help="skip these"
    )
    parser.add_argument(
        "--no-anchors", action="store_true", help="tgispy and raw HTTP only (no DSPy venvs)"
    )
    parser.add_argument(
        "--name",
        metavar="NAME",
        help="write results/NAME.md/.png/.json (default <date> or <date>-quick; a path works too)",
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only rewrite the .md/.png of a past run"
    )
    args = parser.parse_args(argv)
    if args.render:
        render(json.loads(args.render.read_text()))
        return 0
    # --quick: two short rounds of the cheap in-process scenarios (so spread means something),
    # one round of each script's; about 2.5 minutes on an idle 2-core machine.
    rounds, script_rounds, seconds = (2, 1, 1.0) if args.quick else (3, 3, 3.0)
    # "tgispy" rows are the core install (aiohttp transport) wherever they run, even when this
    # venv has the speed extra; the "tgispy[speed]" rows pass FastTransport themselves.
    os.environ.setdefault("TGISPY_TRANSPORT", "aiohttp")
    plan = [n for n in SCENARIOS if (args.only is None or n in args.only) and n not in args.skip]

    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = Report()
    dspy24 = dspy34 = None
    if not args.no_anchors:
        progress("anchor venvs (.bench/venvs; made once, then reused)")
        dspy24, dspy34 = dspy24_python(), dspy34_python()
    ctx = Context(report, args.quick, rounds, script_rounds, seconds, dspy24, dspy34)
    progress(
        f"tgispy bench{' --quick' if args.quick else ''}: {len(plan)} scenarios "
        f"({', '.join(plan)}); {rounds} round(s) here, {script_rounds} in each script; "
        f"{seconds:g} s per throughput sample"
    )
    interrupted = False
    for i, name in enumerate(plan, 1):
        title, run = SCENARIOS[name]
        progress(f"== [{i}/{len(plan)}] {title}")
        t0 = time.monotonic()
        try:
            run(ctx)
        except KeyboardInterrupt:
            report.failures.append(f"{name}: interrupted (Ctrl-C); later scenarios not run")
            interrupted = True
            break
        except Exception as exc:  # reported in the table's footer; the other scenarios still run
            first = str(exc).strip().splitlines()
            message = f"{type(exc).__name__}: {first[0] if first else ''}"
            report.failures.append(f"{name}: {message}")
            progress(f"!! {name} failed: {exc}")
        finally:
            report.timings[name] = time.monotonic() - t0

    elapsed = time.monotonic() - started
    timings = ", ".join(f"{n} {s:.0f} s" for n, s in report.timings.items())
    report.notes += [
        "- **vs tgispy**: how many times better tgispy is than that row, from the medians "
        '(throughput: tgispy / it; time and memory: it / tgispy). "tgispy 5.1x" means tgispy '
        "is 5.1 times faster (or smaller); below 1, the row beats tgispy (raw aiohttp and the "
        "bare llama.cpp engine are ceilings tgispy runs on: there the ratio is the share of "
        "the ceiling tgispy keeps). Other tgispy rows are shown relative to the first one.",
        "- Canned-body scenarios: every client talks to the same loopback nginx answering one "
        "canned TGI body (DSPy 3.4: a canned chat completion on the Messages API route; engines: a "
        "canned vLLM completion on /v1/completions), so they "
        "measure client and program overhead, not a model. Each sample runs in a fresh "
        "interpreter; peak RSS is that process's own (wait4's ru_maxrss).",
        "- **tgispy** rows are the core install: the aiohttp transport. **tgispy[speed]** rows "
        "use what that extra adds: tgispy's FastTransport (HTTP/1.1 over httptools' parser), "
        "and uvloop for the async (32 in flight) driver; the sync face stays on asyncio's loop.",
        "- fleet: `tgispy serve --backend sim` replicas (capacity 4, 5 ms/token); random routing "
        "is DSPy 2.4's policy. server: SmolLM2-135M (Q4_1) on llama.cpp with 1 thread (with 2 "
        "on 2 cores, llama.cpp spin-waits and falls to ~1 tok/s whenever another process holds "
        "a core), 64 new tokens, greedy; the engine row is llama.cpp in-process with no HTTP.",
        f"- Time per scenario: {timings}.",
    ]
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    data = {
        "name": args.name or (f"{stamp}-quick" if args.quick else stamp),
        "date": stamp,
        "quick": args.quick,
        "machine": machine(),
        "seconds": elapsed,
        "rows": [row.to_json() for row in report.rows.values()],
        "failures": report.failures,
        "notes": report.notes,
    }
    json_path = RESULTS / f"{data['name']}.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    md_path = render(data)
    print(f"\nwrote {md_path}, its .png and .json (raw samples) in {elapsed / 60:.1f} minutes")
    if interrupted:
        return 130
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
