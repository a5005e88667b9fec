"""One measurement of an OpenAI-compatible engine client; run in a fresh interpreter by engines.py.

usage: _measure_engines.py {aiohttp|tgispy|dspy24} {vllm|openai} {gen|cot} {seq|conc} PORT SECONDS

``vllm`` is ``HFClientVLLM(model, port, url)``, ``openai`` is ``OpenAI(model, api_base=.../v1,
model_type="text")``; ``gen`` times the client alone (``_generate`` for HFClientVLLM, ``__call__``
for OpenAI, which has no ``_generate`` in DSPy 2.4; tgispy at 32 in flight: ``agenerate`` /
``acall``), ``cot`` times ``ChainOfThought("question -> answer")`` (tgispy at 32 in flight:
``acall``). DSPy 2.4 runs 32 threads at 32 in flight. Every prompt is unique and every answer is
checked: a call that errors or parses to anything but the canned text fails the sample.
Prints one JSON object: {"calls_per_s": ..., "calls": ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from _measure_client import drive_async, drive_threads, run_async, tgispy_transport

MODEL = "canned/model"
#: the text the canned /v1/completions body carries (engines.py); its answer field is "Paris"
COT_COMPLETION = " produce the answer. We know Paris is the capital of France.\nAnswer: Paris"


def _check_text(texts: Any) -> None:
    # _generate returns {"choices": [{"text": ...}]}; __call__ / acall return a list of texts
    if isinstance(texts, dict):
        texts = [c["text"] for c in texts["choices"]]
    if list(texts) != [COT_COMPLETION]:
        raise AssertionError(f"unexpected completion: {texts!r}")


def _check_answer(pred: Any) -> None:
    if pred.answer != "Paris":
        raise AssertionError(f"unexpected prediction: {pred!r}")


async def aiohttp_run(url: str, mode: str, seconds: float) -> int:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> None:
            body = {"model": MODEL, "prompt": f"Question {i}?", "max_tokens": 150}
            async with session.post(url + "/v1/completions", json=body) as resp:
                data = json.loads(await resp.read())
            _check_text([c["text"] for c in data["choices"]])

        return await drive_async(one, mode, seconds)


def make_lm(lib: str, client: str, port: int) -> Any:
    if lib in ("tgispy", "tgispy-speed"):
        import tgispy as dspy

        extra: dict[str, Any] = {"cache": False, "transport": tgispy_transport(lib)}
    else:
        import dspy  # DSPy 2.4.17: engines.py runs it with DSP_CACHEBOOL=False (no joblib cache)

        extra = {}
    if client == "vllm":
        return dspy, dspy.HFClientVLLM(model=MODEL, port=port, url="http://127.0.0.1", **extra)
    base = f"http://127.0.0.1:{port}/v1/"
    lm = dspy.OpenAI(model=MODEL, api_base=base, api_key="x", model_type="text", **extra)
    return dspy, lm


def main() -> None:
    lib, client, what, mode = sys.argv[1:5]
    port, seconds = int(sys.argv[5]), float(sys.argv[6])
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    if lib == "aiohttp":
        calls = asyncio.run(aiohttp_run(url, mode, seconds))
        print(json.dumps({"calls_per_s": calls / (time.perf_counter() - start), "calls": calls}))
        return
    dspy, lm = make_lm(lib, client, port)
    asynchronous = lib in ("tgispy", "tgispy-speed") and mode == "conc"
    if what == "gen":
        sync_one: Any = lm._generate if client == "vllm" else lm
        if asynchronous:  # tgispy only: DSPy 2.4 has no async API
            async_one: Any = lm.agenerate if client == "vllm" else lm.acall
        _check_text(sync_one("warm up"))  # also tgispy's engine detection and /v1/models

        def one(i: int) -> None:
            _check_text(sync_one(f"Question {i}?"))

        async def aone(i: int) -> None:
            _check_text(await async_one(f"Question {i}?"))
    else:
        dspy.configure(lm=lm)
        qa = dspy.ChainOfThought("question -> answer")
        _check_answer(qa(question="warm up?"))  # a completion holding every field: one request

        def one(i: int) -> None:
            _check_answer(qa(question=f"Q{i}?"))

        async def aone(i: int) -> None:
            _check_answer(await qa.acall(question=f"Q{i}?"))

    start = time.perf_counter()
    if asynchronous:

        async def amain() -> int:
            return await drive_async(aone, mode, seconds)

        calls = run_async(lib, amain())
    else:
        calls = drive_threads(one, mode, seconds)
    elapsed = time.perf_counter() - start
    print(json.dumps({"calls_per_s": calls / elapsed, "calls": calls}))


if __name__ == "__main__":
    main()
