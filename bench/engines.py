"""The engine clients on the OpenAI-compatible dialect vs DSPy 2.4.17's, against a canned vLLM.

The TGI client's `_generate` and ChainOfThought rows (`client`, `program`), repeated through
`/v1/completions`: a loopback nginx answers every POST with one canned completion in vLLM's
shape (and `GET /v1/models` with vLLM's, which tgispy reads for engine detection and the served
model), so the rows measure the clients, not a model. Subjects, interleaved round by round, each
sample in a fresh interpreter (`_measure_engines.py`):

  raw aiohttp POST /v1/completions (the ceiling; `_generate` rows only)
  tgispy HFClientVLLM(model, port, url) and OpenAI(model, api_base=".../v1", model_type="text")
      (sequential: `_generate` / `__call__`; 32 in flight: `agenerate` / `acall` on one loop)
  DSPy 2.4.17's dspy.HFClientVLLM and dspy.OpenAI(api_base=...) (32 threads at 32 in flight)

No cache anywhere: tgispy with `cache=False`; DSPy 2.4 with `DSP_CACHEBOOL=False`, which turns
its joblib `CacheMemory`, `NotebookCacheMemory` and `lru_cache` into no-ops (and prompts are unique
per call anyway, so a cache could only miss). Every answer is checked: a call that errors or does
not parse to the canned text (or "Paris" for ChainOfThought) fails the sample and the scenario.

usage: python bench/engines.py [--quick] [--rounds N] [--seconds S] [--no-anchors]
                               [--json-out FILE]
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
    progress,
    run_json,
    summarize,
    write_rows,
)
from _measure_engines import COT_COMPLETION, MODEL

DSPY24 = "dspy 2.4.17"

#: vLLM 0.x's /v1/completions answer (vllm/entrypoints/openai/protocol.py CompletionResponse)
COMPLETION_BODY = json.dumps(
    {
        "id": "cmpl-5b8f0c9e2a7d4c1f9e6b3a2d1c0f8e7d",
        "object": "text_completion",
        "created": 1764806400,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "text": COT_COMPLETION,
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "total_tokens": 28,
            "completion_tokens": 16,
            "prompt_tokens_details": None,
        },
    }
)
#: vLLM's GET /v1/models (ModelList): owned_by "vllm" is what engine="auto" recognises
MODELS_BODY = json.dumps(
    {
        "object": "list",
        "data": [
            {
                "id": MODEL,
                "object": "model",
                "created": 1764806400,
                "owned_by": "vllm",
                "root": MODEL,
                "parent": None,
                "max_model_len": 4096,
                "permission": [],
            }
        ],
    }
)
ROUTES = {"/v1/models": MODELS_BODY, "/version": json.dumps({"version": "0.11.0"})}
CLIENTS = {"vllm": "HFClientVLLM", "openai": "OpenAI(api_base=...)"}


def cases(with_anchors: bool) -> list[tuple[str, str, str, str, str, str]]:
    """(scenario, subject, python, lib, client, what) for one mode; the mode is added later."""
    out: list[tuple[str, str, str, str, str, str]] = []
    anchor = dspy24_python() if with_anchors else ""
    for what in ("gen", "cot"):
        for client, name in CLIENTS.items():
            call = ("_generate" if client == "vllm" else "__call__") if what == "gen" else "CoT"
            scenario = f"vLLM /v1/completions: {name} {call}"
            if what == "gen" and client == "vllm":
                out.append((scenario, "aiohttp (raw)", sys.executable, "aiohttp", client, what))
            out.append((scenario, "tgispy", sys.executable, "tgispy", client, what))
            out.append((scenario, "tgispy[speed]", sys.executable, "tgispy-speed", client, what))
            if with_anchors:
                out.append((scenario, DSPY24, anchor, "dspy24", client, what))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s samples")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 2)")
    parser.add_argument("--seconds", type=float, default=None, help="per sample (default 3)")
    parser.add_argument("--no-anchors", action="store_true", help="no DSPy 2.4 rows")
    parser.add_argument("--json-out", type=Path, help="write report rows here (run_all.py)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    plan = cases(not args.no_anchors)
    samples: dict[tuple[str, str], list[float]] = {}
    with canned_nginx(COMPLETION_BODY, routes=ROUTES) as port:
        for r in range(rounds):
            for mode in ("seq", "conc"):
                for scenario, subject, python, lib, client, what in plan:
                    out = run_json(
                        python,
                        "_measure_engines.py",
                        lib,
                        client,
                        what,
                        mode,
                        str(port),
                        str(seconds),
                        timeout=90 + seconds,
                    )
                    how = "sequential" if mode == "seq" else "32 in flight"
                    full = f"{scenario}, {how}, no cache"
                    label = subject
                    if mode == "conc" and lib == "dspy24":
                        label = f"{DSPY24} (32 threads)"
                    samples.setdefault((full, label), []).append(out["calls_per_s"])
                    progress(
                        f"round {r + 1}/{rounds} · {full} · {label}: "
                        f"{out['calls_per_s']:.1f} calls/s"
                    )
    rows = [bench_row(s, subj, "calls/s", v) for (s, subj), v in samples.items()]
    if args.json_out:
        write_rows(args.json_out, rows)
    print(f"\n{'scenario':<52} {'subject':<28} {'median':>9} {'spread':>7}  vs tgispy")
    for scenario in dict.fromkeys(s for s, _ in samples):
        ours = summarize(samples[scenario, "tgispy"])[0]
        for (s, subject), values in samples.items():
            if s != scenario:
                continue
            med, spread = summarize(values)
            vs = "" if subject == "tgispy" else f"{ours / med:.2f}x" if med else "n/a"
            print(f"{scenario:<52} {subject:<28} {med:>9.1f} {spread:>6.0%}  {vs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
