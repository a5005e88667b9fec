"""Miss-only calls with and without the default cache, paired in one interpreter.

usage: _measure_cache_overhead.py {program|generate} {seq|conc} PORT SECONDS [BLOCKS]

Two clients over the same server, one with ``cache=False`` and one with the default cache (memory
+ disk write-behind in $TGISPY_CACHEDIR), take turns in BLOCKS short blocks each (default 10), so
whatever else the machine is doing hits both alike. Every prompt is new: with the cache each call
looks its key up (a miss) and stores the result. A cache block ends by flushing the disk writes,
so their CPU is counted even though they are done off the request path.

Prints one JSON object: {"nocache": {"calls", "wall_s", "cpu_s"}, "cache": {...}, "tgispy": path}.
CPU is the process's (every thread: user + system).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _measure_client import IN_FLIGHT

_ids = itertools.count()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    api, mode, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    blocks = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    import tgispy as dspy
    from tgispy.cache import LMCache

    def make(cache: bool) -> tuple[Callable[[], Any], Callable[[], Awaitable[Any]]]:
        lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1", cache=cache)
        if api == "program":
            qa = dspy.ChainOfThought("question -> answer")

            def sync_one() -> Any:
                with dspy.context(lm=lm):
                    return qa(question=f"Q{next(_ids)}?")

            async def async_one() -> Any:
                with dspy.context(lm=lm):
                    return await qa.acall(question=f"Q{next(_ids)}?")

            return sync_one, async_one
        return (
            lambda: lm._generate(f"Question {next(_ids)}?"),
            lambda: lm.agenerate(f"Question {next(_ids)}?"),
        )

    arms = {"nocache": make(False), "cache": make(True)}
    totals = {name: {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0} for name in arms}
    block_s = seconds / (2 * blocks)

    def account(name: str, calls: int, wall0: float, cpu0: float) -> None:
        if name == "cache":
            LMCache.default().flush()
        totals[name]["calls"] += calls
        totals[name]["wall_s"] += time.perf_counter() - wall0
        totals[name]["cpu_s"] += cpu_s() - cpu0

    if mode == "seq":
        for one, _ in arms.values():  # warm up: connections, /info
            one()
        for _ in range(blocks):
            for name, (one, _) in arms.items():
                wall0, cpu0, calls = time.perf_counter(), cpu_s(), 0
                end = wall0 + block_s
                while time.perf_counter() < end:
                    one()
                    calls += 1
                account(name, calls, wall0, cpu0)
    else:

        async def amain() -> None:
            for _, aone in arms.values():
                await aone()
            for _ in range(blocks):
                for name, (_, aone) in arms.items():
                    wall0, cpu0 = time.perf_counter(), cpu_s()
                    end = wall0 + block_s
                    count = 0

                    async def worker(
                        aone: Callable[[], Awaitable[Any]] = aone, end: float = end
                    ) -> None:
                        nonlocal count
                        while time.perf_counter() < end:
                            await aone()
                            count += 1

                    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
                    account(name, count, wall0, cpu0)

        asyncio.run(amain())
    print(json.dumps({**totals, "tgispy": dspy.__file__}))


if __name__ == "__main__":
    main()
