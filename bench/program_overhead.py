"""Program overhead: ChainOfThought calls/s against a loopback nginx returning a canned completion.

The canned completion holds every output field, so each call is one request (no continuation).
tgispy runs sequential (sync) and 32 in flight (async `acall`); DSPy 2.4.17 runs sequential and with
32 threads (its only concurrency), in one interleaved run.

usage: python bench/program_overhead.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys

from _common import anchor_python, canned_nginx, run_json, summarize

COMPLETION = " produce the answer. We know Paris is the capital of France.\nAnswer: Paris"
BODY = json.dumps({"generated_text": COMPLETION})
SCENARIOS = [("tgispy", "seq"), ("tgispy", "conc"), ("dspy24", "seq"), ("dspy24", "conc")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cache", action="store_true", help="each library's default cache on (unique prompts)"
    )
    args = parser.parse_args()
    pythons = {"tgispy": sys.executable, "dspy24": anchor_python("dspy24", ["dspy-ai==2.4.17"])}
    results: dict[tuple[str, str], list[float]] = {s: [] for s in SCENARIOS}
    with canned_nginx(BODY) as port:
        for r in range(args.rounds):
            for tool, mode in SCENARIOS:
                out = run_json(
                    pythons[tool],
                    "_measure_program.py",
                    tool,
                    mode,
                    str(port),
                    str(args.seconds),
                    cache=args.cache,
                )
                results[(tool, mode)].append(out["calls_per_s"])
                rate = out["calls_per_s"]
                print(f"round {r + 1}: {tool:8s} {mode:4s} {rate:8.0f}/s", flush=True)
    med = {k: summarize(v) for k, v in results.items()}
    print("\n| program | mode | calls/s (median) | spread | vs DSPy 2.4 same mode |")
    print("|---|---|---|---|---|")
    for (tool, mode), (m, spread) in med.items():
        anchor = med[("dspy24", mode)][0]
        mode_name = "sequential" if mode == "seq" else "32 in flight"
        print(f"| {tool} | {mode_name} | {m:,.0f} | {spread:.0%} | {m / anchor:.1f}x |")


if __name__ == "__main__":
    main()
