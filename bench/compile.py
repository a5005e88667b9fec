"""Optimizer compile time: COPRO and MIPROv2 with small settings, tgispy vs DSPy 2.4.17.

Both libraries compile ``ChainOfThought("question -> answer")`` on the same 20 examples, caches
off, against two loopback servers answering TGI's /generate with one canned completion: nginx
(instant: measures the libraries' own overhead) and a canned TGI (aiohttp, its own process)
answering after 50 ms with ``best_of`` sequences, closer to a real model. The report gives the
wall time of ``compile`` and the number of /generate requests it made (they must match: the same
algorithm on the same answers). tgispy scores candidates concurrently on its async core;
DSPy 2.4.17 runs each Evaluate in ``num_threads`` threads, one candidate after the other.

usage: python bench/compile.py [--rounds 3] [--quick] [--servers nginx slow] [--dspy24-python PATH]
       [--json-out FILE]
       python bench/compile.py --measure {tgispy|dspy24} {copro|copro8|mipro} PORT   (one sample)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import (
    CANNED_INFO,
    ROOT,
    bench_row,
    canned_nginx,
    dspy24_python,
    free_port,
    progress,
    run_json,
    summarize,
    write_rows,
)

# Every field the optimizers ask for, so no call needs a continuation: ChainOfThought's reasoning
# and answer, COPRO's proposed instruction and prefix (the answer then scores 0, which is fine).
COMPLETION = (
    " produce the answer. We know Paris is the capital of France.\nAnswer: Paris"
    "\nProposed Prefix For Output Field: Answer:"
)
GENERATE_BODY = json.dumps({"generated_text": COMPLETION})
EXAMPLES = 20
THREADS = 8
NAMES = {"tgispy": "tgispy", "dspy24": "dspy 2.4.17"}
SCENARIOS = {
    "copro": "COPRO compile (breadth 4, depth 2, 20 examples)",
    "copro8": "COPRO compile (breadth 8, depth 2, 20 examples)",
    "mipro": "MIPROv2 compile (6 candidates, 6 trials, 20 examples)",
}
SERVERS = {
    "nginx": "instant canned nginx",
    "slow": "canned TGI, 50 ms a request, best_of sequences",
}
SLOW_LATENCY = 0.05


def serve_slow(port: int) -> None:
    """A canned TGI answering /generate after SLOW_LATENCY s, with ``best_of`` sequences."""
    import asyncio

    from aiohttp import web

    def sequence() -> dict[str, Any]:
        return {"finish_reason": "eos_token", "generated_tokens": 8, "seed": None}

    async def generate(request: web.Request) -> web.Response:
        body = await request.json()
        best_of = int((body.get("parameters") or {}).get("best_of") or 1)
        await asyncio.sleep(SLOW_LATENCY)
        details = {**sequence(), "prefill": [], "tokens": []}
        if best_of > 1:
            details["best_of_sequences"] = [
                {"generated_text": COMPLETION, **sequence(), "prefill": [], "tokens": []}
                for _ in range(best_of - 1)
            ]
        return web.json_response({"generated_text": COMPLETION, "details": details})

    async def info(request: web.Request) -> web.Response:
        # best_of up to 16: COPRO's breadth 8 asks for 8 proposals in one request.
        return web.json_response({**json.loads(CANNED_INFO), "max_best_of": 16})

    app = web.Application()
    app.add_routes(
        [
            web.post("/generate", generate),
            web.get("/info", info),
            web.get("/health", info),
        ]
    )
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.contextmanager
def slow_server() -> Iterator[int]:
    """:func:`serve_slow` in its own process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the canned server did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _scenarios(server: str) -> list[str]:
    # nginx's canned /info allows best_of <= 4: breadth 8 runs on the slow server only.
    return [s for s in SCENARIOS if server == "slow" or s != "copro8"]


def _metric(example: Any, pred: Any, trace: Any = None) -> bool:
    return bool(example.answer == pred.answer)


def measure(tool: str, optimizer: str, port: int) -> dict[str, float]:
    """One compile in this interpreter: seconds and /generate requests."""
    import logging

    logging.disable(logging.WARNING)
    if tool == "tgispy":
        import tgispy as dspy

        lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1", cache=False)
    else:
        import dspy

        lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1")
    dspy.configure(lm=lm)
    trainset = [
        dspy.Example(
            question=f"Question {i}: what is the capital of France?", answer="Paris"
        ).with_inputs("question")
        for i in range(EXAMPLES)
    ]
    program = dspy.ChainOfThought("question -> answer")
    lm("warm up")  # connections, /info, imports
    # DSPy 2.4 imports its optimizers (and optuna) with `import dspy`; tgispy on first use.
    # Both are imported before the clock starts.
    import optuna  # noqa: F401
    import tqdm  # noqa: F401

    optimizers = (dspy.teleprompt.COPRO, dspy.teleprompt.MIPROv2, dspy.Evaluate)
    assert all(optimizers)
    before = _requests(tool, lm)
    start = time.perf_counter()
    if optimizer.startswith("copro"):
        breadth = 8 if optimizer == "copro8" else 4
        teleprompter = dspy.teleprompt.COPRO(metric=_metric, breadth=breadth, depth=2)
        eval_kwargs = {"num_threads": THREADS, "display_progress": False, "display_table": 0}
        teleprompter.compile(program, trainset=trainset, eval_kwargs=eval_kwargs)
    else:
        teleprompter = dspy.teleprompt.MIPROv2(
            metric=_metric, num_candidates=6, num_threads=THREADS, prompt_model=lm, task_model=lm
        )
        teleprompter.compile(
            program,
            trainset=trainset,
            num_trials=6,
            max_bootstrapped_demos=2,
            max_labeled_demos=2,
            minibatch=False,
            requires_permission_to_run=False,
        )
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "requests": _requests(tool, lm) - before}


def _requests(tool: str, lm: Any) -> int:
    if tool == "tgispy":
        return sum(int(replica["requests"]) for replica in lm.stats().values())
    return len(lm.history)  # DSPy 2.4's HFClientTGI records one entry per /generate request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs=3, metavar=("TOOL", "OPTIMIZER", "PORT"))
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=None, help="default 3; 1 with --quick")
    parser.add_argument("--quick", action="store_true", help="one round (run_all.py --quick)")
    parser.add_argument("--servers", nargs="+", choices=list(SERVERS), default=list(SERVERS))
    parser.add_argument("--dspy24-python", help="a Python with dspy-ai==2.4.17 (default: .bench)")
    parser.add_argument("--json-out", type=Path, help="write report rows here (run_all.py)")
    args = parser.parse_args(argv)
    if args.serve:
        serve_slow(args.serve)
        return 0
    if args.measure:
        tool, optimizer, port = args.measure
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # DSPy 2.4 prints as it optimizes
            out = measure(tool, optimizer, int(port))
        print(json.dumps(out))
        return 0
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    pythons = {"tgispy": sys.executable, "dspy24": args.dspy24_python or dspy24_python()}
    seconds: dict[tuple[str, str, str], list[float]] = {}
    requests: dict[tuple[str, str, str], list[float]] = {}
    for server in args.servers:
        serve = canned_nginx(GENERATE_BODY) if server == "nginx" else slow_server()
        with serve as port:
            for r in range(rounds):
                for optimizer in _scenarios(server):
                    for tool, python in pythons.items():
                        out = run_json(
                            python, "compile.py", "--measure", tool, optimizer, str(port),
                            timeout=600,
                        )  # fmt: skip
                        key = (server, optimizer, tool)
                        seconds.setdefault(key, []).append(out["seconds"])
                        requests.setdefault(key, []).append(out["requests"])
                        progress(
                            f"compile · {server} · round {r + 1}/{rounds} · {optimizer} · "
                            f"{NAMES[tool]}: {out['seconds']:.2f} s, {out['requests']:.0f} requests"
                        )
    print("\n| scenario | server | library | wall time (median) | spread | requests | vs 2.4.17 |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for server in args.servers:
        for optimizer in _scenarios(server):
            scenario = SCENARIOS[optimizer]
            anchor = summarize(seconds[(server, optimizer, "dspy24")])[0]
            for tool in pythons:
                samples = seconds[(server, optimizer, tool)]
                median, spread = summarize(samples)
                calls = sorted({int(c) for c in requests[(server, optimizer, tool)]})
                ratio = f"tgispy {anchor / median:.1f}x" if tool == "tgispy" else "-"
                print(
                    f"| {scenario} | {SERVERS[server]} | {NAMES[tool]} | {median:.2f} s | "
                    f"{spread:.0%} | {calls} | {ratio} |"
                )
                rows.append(
                    bench_row(
                        f"{scenario}, {SERVERS[server]}",
                        NAMES[tool],
                        "s",
                        samples,
                        higher_is_better=False,
                    )
                )
    if args.json_out is not None:
        write_rows(args.json_out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
