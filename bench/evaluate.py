"""Evaluate throughput: Evaluate(num_threads=32) of ChainOfThought over 2,000 examples.

Every example is one request to a loopback nginx answering TGI's /generate with a canned
completion that holds every field (no continuation requests). tgispy runs the program on its
async core (32 coroutines); DSPy 2.4.17 runs 32 threads; DSPy 3.x (optional, when importable in
this interpreter) goes through litellm to a canned chat-completions body. Rounds interleave the
tools; the table shows medians.

usage: python bench/evaluate.py [--examples 2000] [--threads 32] [--rounds 3] [--no-dspy3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys

from _common import anchor_python, canned_nginx, run_json, summarize

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


def dspy3_available() -> bool:
    if importlib.util.find_spec("dspy") is None:
        return False
    from importlib.metadata import version

    return int(version("dspy").split(".")[0]) >= 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-dspy3", action="store_true")
    args = parser.parse_args()
    pythons = {"tgispy": sys.executable, "dspy24": anchor_python("dspy24", ["dspy-ai==2.4.17"])}
    tools = ["tgispy", "dspy24"]
    if not args.no_dspy3 and dspy3_available():
        pythons["dspy34"] = sys.executable
        tools.append("dspy34")
    results: dict[str, list[float]] = {t: [] for t in tools}
    measure = [str(args.examples), str(args.threads)]
    with canned_nginx(GENERATE_BODY) as port, canned_nginx(CHAT_BODY) as chat_port:
        for r in range(args.rounds):
            for tool in tools:
                p = chat_port if tool == "dspy34" else port
                out = run_json(pythons[tool], "_measure_evaluate.py", tool, str(p), *measure)
                results[tool].append(out["examples_per_s"])
                print(
                    f"round {r + 1}: {tool:7s} {out['examples_per_s']:8.0f} examples/s "
                    f"({out['seconds']:.2f} s)",
                    flush=True,
                )
    med = {tool: summarize(samples) for tool, samples in results.items()}
    anchor = med["dspy24"][0]
    print(f"\nEvaluate(num_threads={args.threads}) of ChainOfThought, {args.examples} examples")
    print("\n| program | examples/s (median) | spread | vs DSPy 2.4.17 |")
    print("|---|---|---|---|")
    names = {"tgispy": "tgispy", "dspy24": "DSPy 2.4.17", "dspy34": "DSPy 3.x (litellm)"}
    for tool, (m, spread) in med.items():
        print(f"| {names[tool]} | {m:,.0f} | {spread:.0%} | {m / anchor:.1f}x |")


if __name__ == "__main__":
    main()
