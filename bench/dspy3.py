"""DSPy 3.4 ChainOfThought calls/s at 32 in flight: tgispy's engine vs DSPy's own engines.

All run DSPy 3.4.1's ``dspy.ChainOfThought("question -> answer")`` with ChatAdapter against the
same loopback nginx, which answers every path with one canned chat completion holding every
output field (so each call is one request). Only the engine under ``dspy.LM`` differs:

* ``tgispy``   ``tgi_lm(...)``: ``dspy.LM(engine=TGIEngine, async_engine=AsyncTGIEngine)``
* ``auto``     ``dspy.LM("openai/...", api_base=...)``: DSPy's default engine (native lm15 here)
* ``litellm``  the same with ``engine="litellm"``: DSPy's LiteLLM compatibility path

each with 32 threads (sync calls, what ``Evaluate(num_threads=32)`` does) and with 32 concurrent
``acall`` on one event loop (``--modes`` adds ``seq``, one call at a time). DSPy's cache is off;
every measurement runs in a fresh interpreter of DSPy 3.4.1's own venv (.bench/venvs/dspy34, made
on first use, with this checkout's tgispy installed beside it), interleaved over rounds; the table
shows medians. ``--json-out`` writes report rows for run_all.py, which also runs ``--measure``
directly for DSPy 3.4's row in its ChainOfThought scenarios.

usage: python bench/dspy3.py [--seconds 3] [--rounds 3] [--modes threads async] [--quick]
       [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    bench_row,
    canned_nginx,
    dspy34_python,
    progress,
    run_json,
    summarize,
    write_rows,
)

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
ENGINE_NAMES = {
    "tgispy": "tgispy engine (tgi_lm)",
    "auto": "DSPy default engine",
    "litellm": "DSPy LiteLLM engine",
}
MODES = ("seq", "threads", "async")
MODE_NAMES = {
    "seq": "sequential",
    "threads": "32 in flight, threads",
    "async": "32 in flight, async",
}


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
        drive = "seq" if mode == "seq" else "conc"
        calls = drive_threads(lambda i: qa(question=f"Q{i}?"), drive, seconds)
    elapsed = time.perf_counter() - start
    print(json.dumps({"calls_per_s": calls / elapsed, "calls": calls}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="default 3; 1 with --quick")
    parser.add_argument("--rounds", type=int, default=None, help="default 3; 1 with --quick")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["threads", "async"])
    parser.add_argument("--quick", action="store_true", help="one short round (run_all.py)")
    parser.add_argument("--json-out", type=Path, help="write report rows here (run_all.py)")
    parser.add_argument("--measure", nargs=4, metavar=("ENGINE", "MODE", "PORT", "SECONDS"))
    args = parser.parse_args(argv)
    if args.measure:
        engine, mode, port, seconds = args.measure
        measure(engine, mode, int(port), float(seconds))
        return 0
    seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 3.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    python = dspy34_python()
    scenarios = [(e, m) for m in args.modes for e in ENGINES]
    results: dict[tuple[str, str], list[float]] = {s: [] for s in scenarios}
    with canned_nginx(CHAT_BODY) as port:
        for r in range(rounds):
            for engine, mode in scenarios:
                out = run_json(
                    python,
                    "dspy3.py",
                    "--measure",
                    engine,
                    mode,
                    str(port),
                    str(seconds),
                    timeout=120 + 2 * seconds,
                )
                results[(engine, mode)].append(out["calls_per_s"])
                progress(
                    f"dspy3 · round {r + 1}/{rounds} · {ENGINE_NAMES[engine]}, "
                    f"{MODE_NAMES[mode]}: {out['calls_per_s']:,.0f} calls/s"
                )
    med = {k: summarize(v) for k, v in results.items()}
    print("\n| engine under dspy.LM | calls as | calls/s (median) | spread | tgispy vs it |")
    print("|---|---|---|---|---|")
    for (engine, mode), (rate, spread) in med.items():
        ratio = med[("tgispy", mode)][0] / rate
        print(f"| {engine} | {MODE_NAMES[mode]} | {rate:,.0f} | {spread:.0%} | {ratio:.1f}x |")
    if args.json_out is not None:
        rows = [
            bench_row(
                f"DSPy 3.4 ChainOfThought, {MODE_NAMES[mode]}: engine under dspy.LM",
                ENGINE_NAMES[engine],
                "calls/s",
                samples,
            )
            for (engine, mode), samples in results.items()
        ]
        write_rows(args.json_out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
