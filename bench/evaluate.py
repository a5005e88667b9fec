"""Evaluate throughput: Evaluate(num_threads=32) of ChainOfThought over 2,000 examples.

Every example is one request to a loopback nginx answering TGI's /generate with a canned
completion that holds every field (no continuation requests). tgispy runs the program on its
async core (32 coroutines); DSPy 2.4.17 runs 32 threads; DSPy 3.4.1 (its own venv under .bench/,
made on first use) goes through ``dspy.LM`` (default engine) to a canned chat-completions body on
the Messages API route. Rounds interleave the tools; the table shows medians. ``--json-out``
writes report rows for run_all.py (throughput and each tool's peak RSS).

usage: python bench/evaluate.py [--examples 2000] [--threads 32] [--rounds 3] [--no-dspy3]
       [--no-anchors] [--quick] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import (
    bench_row,
    canned_nginx,
    dspy24_python,
    dspy34_python,
    progress,
    run_json,
    summarize,
    write_rows,
)

COMPLETION = " produce the answer. We know Paris is the capital of France.\nAnswer: Paris"
GENERATE_BODY = json.dumps({"generated_text": COMPLETION})
CHAT_BODY = json.dumps(
    {
        "id": "canned",
        "object": "chat.completion",
        "created": 0,
        "model": "canned",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "[[ ## reasoning ## ]]\nWe know Paris is the capital of France."
                    "\n\n[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]",
                },
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }
)


NAMES = {
    "tgispy": "tgispy",
    "dspy24": "dspy 2.4.17",
    "dspy34": "dspy 3.4.1 (dspy.LM, Messages API)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=None, help="default 3; 1 with --quick")
    parser.add_argument("--no-dspy3", action="store_true", help="skip the DSPy 3.4 anchor")
    parser.add_argument("--no-anchors", action="store_true", help="tgispy only (no DSPy venvs)")
    parser.add_argument("--quick", action="store_true", help="one round (run_all.py --quick)")
    parser.add_argument("--json-out", type=Path, help="write report rows here (run_all.py)")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    pythons = {"tgispy": sys.executable}
    if not args.no_anchors:
        pythons["dspy24"] = dspy24_python()
        if not args.no_dspy3:
            pythons["dspy34"] = dspy34_python()
    tools = list(pythons)
    rates: dict[str, list[float]] = {t: [] for t in tools}
    rss: dict[str, list[float]] = {t: [] for t in tools}
    measure = [str(args.examples), str(args.threads)]
    # DSPy 2.4 at ~1,000 examples/s and DSPy 3.4 at ~500/s: 2,000 examples take seconds, so
    # 60 s plus 20 ms an example bounds a run even on a loaded machine.
    timeout = 60 + 0.02 * args.examples
    with canned_nginx(GENERATE_BODY) as port, canned_nginx(CHAT_BODY) as chat_port:
        for r in range(rounds):
            for tool in tools:
                p = chat_port if tool == "dspy34" else port
                out = run_json(
                    pythons[tool], "_measure_evaluate.py", tool, str(p), *measure, timeout=timeout
                )
                rates[tool].append(out["examples_per_s"])
                rss[tool].append(out["peak_rss_mib"])
                progress(
                    f"evaluate · round {r + 1}/{rounds} · {NAMES[tool]}: "
                    f"{out['examples_per_s']:,.0f} examples/s ({out['seconds']:.2f} s)"
                )
    anchor = summarize(rates["dspy24"])[0] if "dspy24" in rates else None
    print(f"\nEvaluate(num_threads={args.threads}) of ChainOfThought, {args.examples} examples")
    print("\n| program | examples/s (median) | spread | vs DSPy 2.4.17 |")
    print("|---|---|---|---|")
    for tool, samples in rates.items():
        m, spread = summarize(samples)
        vs = f"{m / anchor:.1f}x" if anchor else "-"
        print(f"| {NAMES[tool]} | {m:,.0f} | {spread:.0%} | {vs} |")
    if args.json_out is not None:
        scenario = f"Evaluate(num_threads={args.threads}), {args.examples:,} examples"
        rows = [bench_row(scenario, NAMES[t], "examples/s", rates[t]) for t in tools]
        rows += [
            bench_row(f"peak RSS, {scenario}", NAMES[t], "MiB", rss[t], higher_is_better=False)
            for t in tools
        ]
        write_rows(args.json_out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
