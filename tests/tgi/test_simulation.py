"""The shipped client core over simulated misbehaving replicas: no sockets, a fake clock.

Each replica is a scripted behaviour behind :class:`tgispy.testing.MockTransport`; the fake clock
moves only when a reply's latency or a backoff sleeps. This runs the real ``TGIClient`` (its one
retry driver, the router, the retry budget, parsing) and checks that a run over a faulty fleet
loses nothing: every call is answered or raises a typed error that names its replica.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable

import pytest

from tgispy.errors import NoHealthyReplicaError, TGIError
from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi._client import TGIClient
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy
from tgispy.tgi._response import parse_generate_response
from tgispy.tgi._transport import HTTPResponse

from ._fakes import FakeClock

HEALTHY, DEAD, STORM, MALFORMED, SLOW = (f"http://127.0.0.1:{8000 + i}" for i in range(5))
Behaviour = Callable[[random.Random], Reply]

ANSWER = Reply.generate("answer")


def healthy(latency: float) -> Behaviour:
    return lambda rng: Reply(ANSWER.status, ANSWER.body, ANSWER.headers, delay=latency)


def dead(rng: random.Random) -> Reply:
    return Reply.refuse_connection()


def storm(rng: random.Random) -> Reply:
    if rng.random() < 0.6:
        return Reply.error(429, "Model is overloaded", "overloaded")
    return healthy(0.05)(rng)


def malformed(rng: random.Random) -> Reply:
    if rng.random() < 0.3:
        return Reply(200, b'{"generated_text": "ans', delay=0.05)
    return healthy(0.05)(rng)


FLEET: dict[str, Behaviour] = {
    HEALTHY: healthy(0.05),
    DEAD: dead,
    STORM: storm,
    MALFORMED: malformed,
    SLOW: healthy(0.5),
}


class FakeTime:
    """A fake clock whose sleep advances it (and yields to the loop once)."""

    def __init__(self) -> None:
        self.clock = FakeClock()

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await asyncio.sleep(0)


def fleet_transport(
    fleet: dict[str, Behaviour], rng: random.Random, time: FakeTime
) -> MockTransport:
    def handle(req: Recorded) -> Reply:
        behaviour = fleet[req.replica]
        if req.path == "/health":
            return Reply.refuse_connection() if behaviour is dead else Reply(200, b"")
        if req.path == "/info":
            return Reply.refuse_connection() if behaviour is dead else Reply(404, b"")
        return behaviour(rng)

    return MockTransport(handle, all_routes=True, sleep=time.sleep)


def parse(resp: HTTPResponse, replica: str) -> str:
    return parse_generate_response(resp.body).sequences[0].text


def names_a_replica(error: TGIError, urls: list[str]) -> bool:
    if isinstance(error, NoHealthyReplicaError):
        return bool(error.errors) and set(error.errors) <= set(urls)
    return error.replica in urls


def make_client(
    fleet: dict[str, Behaviour],
    time: FakeTime,
    *,
    retry: RetryPolicy,
    routing: RoutingPolicy,
    seed: int,
) -> tuple[TGIClient, MockTransport]:
    transport = fleet_transport(fleet, random.Random(seed), time)
    client = TGIClient(
        list(fleet),
        retry=retry,
        routing=routing,
        rng=random.Random(seed + 1),
        transport=transport,
        clock=time.clock,
        sleep=time.sleep,
    )
    return client, transport


async def test_faulty_fleet_loses_nothing() -> None:
    time = FakeTime()
    client, _ = make_client(FLEET, time, retry=RetryPolicy(), routing=RoutingPolicy(), seed=5)
    outcomes: Counter[str] = Counter()
    for _ in range(2000):
        try:
            text, _meta = await client.post("/generate", {"inputs": "q"}, parse)
            assert text == "answer"
            outcomes["answer"] += 1
        except TGIError as exc:
            assert names_a_replica(exc, list(FLEET)), exc
            outcomes[type(exc).__name__] += 1
        time.clock.advance(0.01)
    stats = client.stats()
    assert sum(outcomes.values()) == 2000
    assert outcomes["answer"] >= 0.995 * 2000, outcomes
    assert all(s["in_flight"] == 0 for s in stats.values())
    # the dead replica is ejected again and again, and takes little traffic
    total = sum(s["requests"] for s in stats.values())
    assert stats[DEAD]["ejections"] >= 3
    assert stats[DEAD]["requests"] < 0.02 * total
    assert set(stats[DEAD]["errors"]) <= {"ConnectError"}
    # p2c sends less to the 10x slower replica than to the healthy one
    assert stats[SLOW]["requests"] < stats[HEALTHY]["requests"]
    assert stats[SLOW]["latency_p50"] == pytest.approx(0.5)


async def test_partial_faults_never_become_an_outage() -> None:
    """Issue 13.2: the healthy replica dies; the flaky ones still answer most calls."""
    time = FakeTime()
    fleet: dict[str, Behaviour] = {HEALTHY: healthy(0.05), STORM: storm, MALFORMED: malformed}
    client, _ = make_client(fleet, time, retry=RetryPolicy(), routing=RoutingPolicy(), seed=7)
    outcomes: Counter[str] = Counter()
    for n in range(3000):
        if n == 500:
            fleet[HEALTHY] = dead
        if n == 2500:
            fleet[HEALTHY] = healthy(0.05)
            restarted_at = time.clock()
        try:
            await client.post("/generate", {"inputs": "q"}, parse)
            outcomes["answer"] += 1
        except TGIError as exc:
            assert names_a_replica(exc, list(fleet)), exc
            outcomes[type(exc).__name__] += 1
        if n == 2500 + 200:
            # back in rotation within a few seconds of its restart, and taking traffic
            assert not client.stats()[HEALTHY]["ejected"]
            assert client.stats()[HEALTHY]["latency_p50"] is not None
            assert time.clock() - restarted_at > 0
        time.clock.advance(0.01)
    # every call either answered or failed after its own attempts ran out (3 attempts on
    # replicas failing 30% and 60% of calls): never a fail-fast "no healthy replica"
    assert outcomes["answer"] >= 0.975 * 3000, outcomes
    assert outcomes["NoHealthyReplicaError"] == 0, outcomes


async def test_a_fresh_client_finds_the_replica_that_answers() -> None:
    """Issue 13.2: first calls over {healthy, 429 storm, malformed, dead} are answered."""
    for seed in range(20):
        time = FakeTime()
        fleet: dict[str, Behaviour] = {
            DEAD: dead,
            STORM: lambda rng: Reply.error(429, "Model is overloaded", "overloaded"),
            MALFORMED: lambda rng: Reply(200, b"<html>login</html>"),
            HEALTHY: healthy(0.05),
        }
        client, _ = make_client(
            fleet, time, retry=RetryPolicy(), routing=RoutingPolicy(), seed=seed
        )
        for _ in range(3):
            text, meta = await client.post("/generate", {"inputs": "q"}, parse)
            assert text == "answer" and meta.replica == HEALTHY


async def test_total_outage_fails_fast_and_the_budget_caps_retries() -> None:
    time = FakeTime()
    fleet: dict[str, Behaviour] = {DEAD + "/a": dead, DEAD + "/b": dead}
    retry = RetryPolicy(max_attempts=5, budget_ratio=0.1, budget_min_per_s=1.0, budget_ttl=10.0)
    routing = RoutingPolicy(eject_consecutive_failures=50, eject_failure_rate=None)
    transport = MockTransport(lambda req: Reply.refuse_connection(), all_routes=True)
    client = TGIClient(
        list(fleet),
        retry=retry,
        routing=routing,
        rng=random.Random(1),
        transport=transport,
        clock=time.clock,
        sleep=lambda s: asyncio.sleep(0),  # time stands still: one budget window
    )
    errors: Counter[str] = Counter()
    for _ in range(300):
        with pytest.raises(TGIError) as info:
            await client.post("/generate", {"inputs": "q"}, parse)
        errors[type(info.value).__name__] += 1
    sent = sum(s["requests"] for s in client.stats().values())
    # each replica took 50 failures and was ejected; from then on calls fail fast, sending nothing
    assert sent == 100
    assert all(s["ejected"] for s in client.stats().values())
    assert errors["NoHealthyReplicaError"] > 0
    # beyond one free fail-over per call, the budget capped retries: 0.1 x calls + 1/s x 10 s
    calls_that_sent = 100 // 2
    assert sent - calls_that_sent <= calls_that_sent + 0.1 * 300 + 10


async def test_concurrent_calls_wait_at_caps_and_never_overfill() -> None:
    """Concurrent tasks on one loop: the Wait choice keeps each replica within its cap."""
    urls = [HEALTHY, SLOW, STORM]
    cap = 2
    live: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    rng = random.Random(3)

    async def handle(req: Recorded) -> Reply:
        live[req.replica] += 1
        peak[req.replica] = max(peak[req.replica], live[req.replica])
        try:
            await asyncio.sleep(0.001)
        finally:
            live[req.replica] -= 1
        if req.replica == STORM and rng.random() < 0.5:
            return Reply.error(429, "Model is overloaded", "overloaded")
        return ANSWER

    client = TGIClient(
        urls,
        retry=RetryPolicy(deadline=30.0, backoff_initial=0.001, backoff_max=0.002),
        routing=RoutingPolicy(max_in_flight_per_replica=cap),
        rng=random.Random(2),
        transport=MockTransport(handle),
    )

    async def call() -> object:
        try:
            return (await client.post("/generate", {"inputs": "q"}, parse))[0]
        except TGIError as exc:
            return exc

    results = await asyncio.gather(*(call() for _ in range(120)))
    assert len(results) == 120
    for r in results:
        assert r == "answer" or (isinstance(r, TGIError) and r.replica in urls), r
    assert max(peak.values()) <= cap
    assert all(s["in_flight"] == 0 for s in client.stats().values())
