"""One sample of miss-only calls/s, with or without the default cache; run by cache_overhead.py.

usage: _measure_cache_overhead.py {program|generate} {seq|conc} {nocache|cache} PORT SECONDS
Prints one JSON object: {"calls_per_s", "cpu_us_per_call", "calls", "tgispy": <imported from>}.
CPU per call (every thread of the process, writes flushed at the end included) is the steadier
figure on a shared machine: other processes change the wall time a call takes, far less its CPU.
Every prompt is new, so with the cache each call is a miss that looks the key up and stores the
result (the default cache: memory + disk write-behind in $TGISPY_CACHEDIR).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _measure_client import drive_async, drive_threads


def main() -> None:
    api, mode, cache, port, seconds = sys.argv[1:6]
    import tgispy as dspy

    lm = dspy.HFClientTGI(
        model="canned/model", port=int(port), url="http://127.0.0.1", cache=cache == "cache"
    )
    sync_one: Callable[[int], Any]
    async_one: Callable[[int], Awaitable[Any]]
    if api == "program":
        dspy.configure(lm=lm)
        qa = dspy.ChainOfThought("question -> answer")
        assert qa(question="warm up?").answer == "Paris"
        sync_one = lambda i: qa(question=f"Q{i}?")  # noqa: E731
        async_one = lambda i: qa.acall(question=f"Q{i}?")  # noqa: E731
    else:
        lm._generate("warm up")
        sync_one = lambda i: lm._generate(f"Question {i}?")  # noqa: E731
        async_one = lambda i: lm.agenerate(f"Question {i}?")  # noqa: E731
    cpu_start = cpu_s()
    start = time.perf_counter()
    if mode == "conc":

        async def amain() -> int:
            return await drive_async(async_one, mode, float(seconds))

        calls = asyncio.run(amain())
    else:
        calls = drive_threads(sync_one, mode, float(seconds))
    elapsed = time.perf_counter() - start
    if cache == "cache":
        from tgispy.cache import LMCache

        LMCache.default().flush()  # the writes' CPU counts too, even when done off the hot path
    cpu_us = (cpu_s() - cpu_start) / calls * 1e6
    out = {"calls_per_s": calls / elapsed, "cpu_us_per_call": cpu_us, "calls": calls}
    print(json.dumps({**out, "tgispy": dspy.__file__}))


def cpu_s() -> float:
    """CPU seconds used by this process so far, every thread (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
