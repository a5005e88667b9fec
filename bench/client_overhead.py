"""Client overhead: `_generate` calls/s against a loopback nginx returning a canned TGI body.

Compares, in one run and interleaved: raw aiohttp (the ceiling), tgispy (sync sequential, async 32
in flight), TGI's own `text-generation` AsyncClient, and DSPy 2.4.17's HFClientTGI (installed in
its own venv under .bench/ on first use). Prints a markdown table.

usage: python bench/client_overhead.py [--seconds 3] [--rounds 3] [--no-dspy]
"""

from __future__ import annotations

import argparse
import sys

from _common import anchor_python, canned_nginx, run_json, summarize

SCENARIOS = [
    ("aiohttp", "seq"),
    ("aiohttp", "conc"),
    ("tgispy", "seq"),
    ("tgispy", "conc"),
    ("text-generation", "conc"),
    ("dspy24", "seq"),
    ("dspy24", "conc"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-dspy", action="store_true", help="skip the DSPy 2.4 anchor")
    args = parser.parse_args()

    pythons = {
        "aiohttp": sys.executable,
        "tgispy": sys.executable,
        "text-generation": sys.executable,
    }
    scenarios = [s for s in SCENARIOS if not (args.no_dspy and s[0] == "dspy24")]
    if not args.no_dspy:
        pythons["dspy24"] = anchor_python("dspy24", ["dspy-ai==2.4.17"])

    results: dict[tuple[str, str], list[float]] = {s: [] for s in scenarios}
    with canned_nginx() as port:
        for r in range(args.rounds):
            for tool, mode in scenarios:
                out = run_json(
                    pythons[tool], "_measure_client.py", tool, mode, str(port), str(args.seconds)
                )
                results[(tool, mode)].append(out["calls_per_s"])
                rate = out["calls_per_s"]
                print(f"round {r + 1}: {tool:16s} {mode:4s} {rate:8.0f}/s", flush=True)

    med = {k: summarize(v) for k, v in results.items()}
    print("\n| client | mode | calls/s (median) | spread | vs aiohttp | vs DSPy 2.4 seq |")
    print("|---|---|---|---|---|---|")
    base = {m: med[("aiohttp", m)][0] for m in ("seq", "conc")}
    dspy_seq = med.get(("dspy24", "seq"), (0.0, 0.0))[0]
    for (tool, mode), (m, spread) in med.items():
        mode_name = "sequential" if mode == "seq" else "32 in flight"
        vs_dspy = f"{m / dspy_seq:.1f}x" if dspy_seq else "-"
        print(
            f"| {tool} | {mode_name} | {m:,.0f} | {spread:.0%} | {m / base[mode]:.0%} | {vs_dspy} |"
        )


if __name__ == "__main__":
    main()
