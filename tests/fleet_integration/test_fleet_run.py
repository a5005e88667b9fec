"""2,000 calls over a fleet where every replica but one misbehaves: nothing is lost."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tgispy.lm._tgi import HFClientTGI

from ._replicas import EXPECTED, TOKEN_S, check_outcome, client, sim
from .conftest import StartProcess, StartReplica

CALLS = 2000
IN_FLIGHT = 32
#: the killed replica is SIGKILLed once this many calls have finished
KILL_AFTER = 400
#: every STREAM_EVERY-th call streams (``/generate_stream``), the others use ``/generate``
STREAM_EVERY = 4


async def _one(lm: HFClientTGI, i: int) -> str:
    if i % STREAM_EVERY == 0:
        return "".join([piece async for piece in lm.astream(f"question {i}")])
    (text,) = await lm.acall(f"question {i}")
    return text


@pytest.mark.timeout(90)
async def test_2000_calls_over_a_misbehaving_fleet_lose_nothing(
    start: StartReplica, process: StartProcess
) -> None:
    healthy = await start(sim())
    storm = await start(sim(error_rates={429: 0.8}, seed=1))
    slow = await start(sim(token_latency_s=10 * TOKEN_S))
    garbled = await start(sim(malformed_rate=0.2, truncated_rate=0.2, seed=2))
    dropper = await start(sim(drop_rate=0.4, seed=3))
    doomed = process(["--sim-text", EXPECTED, "--sim-token-latency", str(TOKEN_S)])
    urls = [r.url for r in (healthy, storm, slow, garbled, dropper)] + [doomed.url]
    lm = client(urls)

    outcomes: list[object] = [None] * CALLS
    finished = 0
    todo = iter(range(CALLS))

    async def worker() -> None:
        nonlocal finished
        for i in todo:
            try:
                # A hang would surface here as a TimeoutError, which check_outcome rejects.
                outcomes[i] = await asyncio.wait_for(_one(lm, i), timeout=30.0)
            except Exception as exc:
                outcomes[i] = exc
            finished += 1
            if finished == KILL_AFTER:
                doomed.process.kill()  # SIGKILL mid-run: its in-flight requests die with it

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(IN_FLIGHT))), timeout=75.0)

    kinds = Counter(check_outcome(o, urls) for o in outcomes)
    stats = lm.stats()
    print(kinds, {u: (s["requests"], s["errors"], s["ejections"]) for u, s in stats.items()})
    assert sum(kinds.values()) == CALLS  # every call accounted for
    # Retries on the healthy replicas absorb nearly every fault; generous margin for CI noise.
    assert kinds["ok"] >= 0.9 * CALLS, kinds
    assert all(s["in_flight"] == 0 for s in stats.values()), stats
    assert stats[doomed.url]["ejections"] >= 1  # the killed replica was noticed
    assert stats[doomed.url]["requests"] >= 1
