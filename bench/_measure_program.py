"""One measurement of ChainOfThought calls/s; run in a fresh interpreter by program_overhead.py.

usage: _measure_program.py {tgispy|dspy24} {seq|conc} PORT SECONDS
Prints one JSON object: {"calls_per_s": ..., "calls": ...}.
"""

from __future__ import annotations

import json
import os
import sys
import time

from _measure_client import drive_async, drive_threads, run_async, tgispy_transport


def main() -> None:
    tool, mode, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    tgispy = tool in ("tgispy", "tgispy-speed")
    if tgispy:
        import tgispy as dspy

        cache = os.environ.get("BENCH_CACHE") == "1"
        lm = dspy.HFClientTGI(
            model="canned/model",
            port=port,
            url="http://127.0.0.1",
            cache=cache,
            transport=tgispy_transport(tool),
        )
    else:
        import dspy

        lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1")
    dspy.configure(lm=lm)
    qa = dspy.ChainOfThought("question -> answer")
    first = qa(question="warm up?")
    assert first.answer == "Paris", (
        first
    )  # a canned completion holding every field: no continuation
    start = time.perf_counter()
    if tgispy and mode == "conc":

        async def amain() -> int:
            return await drive_async(lambda i: qa.acall(question=f"Q{i}?"), mode, seconds)

        calls = run_async(tool, amain())
    else:
        calls = drive_threads(lambda i: qa(question=f"Q{i}?"), mode, seconds)
    elapsed = time.perf_counter() - start
    print(json.dumps({"calls_per_s": calls / elapsed, "calls": calls}))


if __name__ == "__main__":
    main()
