"""DSPy 3.4 ChainOfThought calls/s at 32 in flight: tgispy's engine vs DSPy's own engines.

All run DSPy 3.4.1's ``dspy.ChainOfThought("question -> answer")`` with ChatAdapter against the
same loopback nginx, which answers every path with one canned chat completion holding every
output field (so each call is one request). Only the engine under ``dspy.LM`` differs:

* ``tgispy``   ``tgi_lm(...)``: ``dspy.LM(engine=TGIEngine, async_engine=AsyncTGIEngine)``
* ``auto``     ``dspy.LM("openai/...", api_base=...)``: DSPy's default engine (native lm15 here)
* ``litellm``  the same with ``engine="litellm"``: DSPy's LiteLLM compatibility path

each with 32 threads (sync calls, what ``Evaluate(num_threads=32)`` does) and with 32 concurrent
``acall`` on one event loop. DSPy's cache is off; every measurement runs in a fresh interpreter,
interleaved over rounds; the table shows medians.

usage: python bench/dspy3.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from _common import canned_nginx, run_json, summarize

ANSWER = "Paris"
CONTENT = (
    "[[ ## reasoning ## ]]\nParis is the capital of France.\n\n"
    f"[[ ## answer ## ]]\n{ANSWER}\n\n[[ ## completed ## ]]"
)
CHAT_BODY = json.dumps(
    {
        "object": "chat.completion",
        "id": "",
        "created": 1,
        "model": "canned/model",
        "system_fingerprint": "3.3.6-dev0-native",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": CONTENT},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
    }
)
ENGINES = ("tgispy", "auto", "litellm")
MODES = ("threads", "async")


def build_lm(engine: str, port: int) -> Any:
    import dspy

    base = f"http://127.0.0.1:{port}"
    if engine == "tgispy":
        from tgispy.integrations.dspy import tgi_lm

        return tgi_lm("tgi/canned", base, cache=False)
    options: dict[str, Any] = {"api_base": base + "/v1", "api_key": "unused", "cache": False}
    if engine == "litellm":
        options["engine"] = "litellm"
    return dspy.LM("openai/canned", num_retries=0, **options)


def measure(engine: str, mode: str, port: int, seconds: float) -> None:
    """One measurement, in this (fresh) interpreter; prints one JSON object."""
    import dspy
    from _measure_client import drive_async, drive_threads

    lm = build_lm(engine, port)
    dspy.configure(lm=lm, adapter=dspy.ChatAdapter())
    qa = dspy.ChainOfThought("question -> answer")
    first = qa(question="warm up?")
    assert first.answer == ANSWER, first
    start = time.perf_counter()
    if mode == "async":

        async def amain() -> int:
            return int(await drive_async(lambda i: qa.acall(question=f"Q{i}?"), "conc", seconds))

        calls = asyncio.run(amain())
    else:
        calls = drive_threads(lambda i: qa(question=f"Q{i}?"), "conc", seconds)
    elapsed = time.perf_counter() - start
    print(json.dumps({"calls_per_s": calls / elapsed, "calls": calls}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", nargs=4, metavar=("ENGINE", "MODE", "PORT", "SECONDS"))
    args = parser.parse_args()
    if args.measure:
        engine, mode, port, seconds = args.measure
        measure(engine, mode, int(port), float(seconds))
        return
    # LiteLLM fetches its model price map over the network at import unless told not to.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import dspy

    print(f"DSPy {dspy.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    scenarios = [(e, m) for m in MODES for e in ENGINES]
    results: dict[tuple[str, str], list[float]] = {s: [] for s in scenarios}
    with canned_nginx(CHAT_BODY) as port:
        for r in range(args.rounds):
            for engine, mode in scenarios:
                out = run_json(
                    sys.executable,
                    "dspy3.py",
                    "--measure",
                    engine,
                    mode,
                    str(port),
                    str(args.seconds),
                    timeout=120 + 2 * args.seconds,
                )
                results[(engine, mode)].append(out["calls_per_s"])
                rate = out["calls_per_s"]
                print(f"round {r + 1}: {engine:8s} {mode:8s} {rate:8.0f} calls/s", flush=True)
    med = {k: summarize(v) for k, v in results.items()}
    print("\n| engine under dspy.LM | 32 in flight as | calls/s (median) | spread | tgispy vs it |")
    print("|---|---|---|---|---|")
    for (engine, mode), (rate, spread) in med.items():
        ratio = med[("tgispy", mode)][0] / rate
        print(f"| {engine} | {mode} | {rate:,.0f} | {spread:.0%} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
