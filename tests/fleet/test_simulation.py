"""The pure cores wired together as the client wires them, over simulated misbehaving replicas.

No sockets: each replica is a scripted behaviour on a fake clock. This pins the integration shape
(choose -> on_start -> attempt -> on_success / on_failure, driven by one retry plan) and checks
that a run over a faulty fleet loses nothing: every call is answered or raises a typed error that
names its replica.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tgispy.errors import (
    ConnectError,
    MalformedResponseError,
    NoHealthyReplicaError,
    OverloadedError,
    TGIError,
    TGITimeoutError,
)
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy
from tgispy.tgi._retry import DEADLINE, Attempt, RetryBudget, RetryPlan, drive_async, drive_sync
from tgispy.tgi._routing import NoneAvailable, Pick, Probe, ReplicaSet, Wait

from ._fakes import FakeClock

HEALTHY, DEAD, STORM, MALFORMED, SLOW = (f"http://127.0.0.1:{8000 + i}" for i in range(5))
Behaviour = Callable[[FakeClock, random.Random], str]


def healthy(latency: float) -> Behaviour:
    def act(clock: FakeClock, rng: random.Random) -> str:
        clock.advance(latency)
        return "answer"

    return act


def dead(clock: FakeClock, rng: random.Random) -> str:
    clock.advance(0.001)
    raise ConnectError("connection refused")


def storm(clock: FakeClock, rng: random.Random) -> str:
    if rng.random() < 0.6:
        clock.advance(0.001)
        raise OverloadedError("Model is overloaded", status=429)
    return healthy(0.05)(clock, rng)


def malformed(clock: FakeClock, rng: random.Random) -> str:
    clock.advance(0.05)
    if rng.random() < 0.3:
        raise MalformedResponseError("truncated JSON body")
    return "answer"


FLEET: dict[str, Behaviour] = {
    HEALTHY: healthy(0.05),
    DEAD: dead,
    STORM: storm,
    MALFORMED: malformed,
    SLOW: healthy(0.5),
}


def route(rs: ReplicaSet, attempt: Attempt, clock: FakeClock) -> str:
    """The routing half of an attempt: probe ejected replicas when due; fail fast when none."""
    while True:
        choice = rs.choose(exclude=attempt.exclude)
        if isinstance(choice, Pick):
            return choice.url
        if isinstance(choice, Probe):
            up = FLEET[choice.url] is not dead
            rs.on_probe_result(choice.url, up, None if up else "connection refused")
            continue
        if isinstance(choice, Wait):  # sequential callers never fill a replica
            raise AssertionError("unexpected Wait")
        assert isinstance(choice, NoneAvailable)
        raise choice.to_error()


def make_attempt(rs: ReplicaSet, clock: FakeClock, rng: random.Random) -> Callable[[Attempt], str]:
    def attempt(a: Attempt) -> str:
        url = route(rs, a, clock)
        a.replica = url
        rs.on_start(url)
        started = clock()
        try:
            answer = FLEET[url](clock, rng)
        except TGIError as exc:
            exc.replica = url
            rs.on_failure(url, exc, latency=clock() - started)
            raise
        rs.on_success(url, clock() - started)
        return answer

    return attempt


def names_a_replica(error: TGIError) -> bool:
    if isinstance(error, NoHealthyReplicaError):
        return bool(error.errors) and set(error.errors) <= set(FLEET)
    return error.replica in FLEET


def test_faulty_fleet_loses_nothing() -> None:
    clock = FakeClock()
    rng = random.Random(5)
    retry = RetryPolicy()
    rs = ReplicaSet(list(FLEET), RoutingPolicy(), clock=clock, rng=random.Random(6))
    budget = RetryBudget(retry, clock=clock)
    attempt = make_attempt(rs, clock, rng)
    outcomes: Counter[str] = Counter()
    for n in range(2000):
        plan = RetryPlan(retry, budget=budget, clock=clock, rng=random.Random(n))
        try:
            assert drive_sync(plan, attempt, sleep=clock.advance) == "answer"
            outcomes["answer"] += 1
        except TGIError as exc:
            assert names_a_replica(exc), exc
            outcomes[type(exc).__name__] += 1
        clock.advance(0.01)
    stats = rs.stats()
    assert sum(outcomes.values()) == 2000
    assert outcomes["answer"] >= 0.99 * 2000, outcomes
    assert all(s["in_flight"] == 0 for s in stats.values())
    # the dead replica is ejected again and again, for longer each time, and takes little traffic
    total = sum(s["requests"] for s in stats.values())
    assert stats[DEAD]["ejections"] >= 3
    assert stats[DEAD]["requests"] < 0.02 * total
    assert stats[DEAD]["errors"] == {"ConnectError": stats[DEAD]["requests"]}
    # p2c sends less to the 10x slower replica than to the healthy one
    assert stats[SLOW]["requests"] < stats[HEALTHY]["requests"]
    assert stats[SLOW]["latency_p50"] == pytest.approx(0.5)


def test_total_outage_fails_fast_and_the_budget_caps_retries() -> None:
    clock = FakeClock()
    retry = RetryPolicy(max_attempts=5, budget_ratio=0.1, budget_min_per_s=1.0, budget_ttl=10.0)
    rs = ReplicaSet(
        [DEAD + "/a", DEAD + "/b"],
        RoutingPolicy(eject_consecutive_failures=50, eject_failure_rate=None),
        clock=clock,
        rng=random.Random(1),
    )
    budget = RetryBudget(retry, clock=clock)
    attempts = 0

    def attempt(a: Attempt) -> str:
        nonlocal attempts
        attempts += 1
        url = route_any(rs, a)
        a.replica = url
        rs.on_start(url)
        rs.on_failure(url, ConnectError("connection refused", replica=url))
        raise ConnectError("connection refused", replica=url)

    errors: Counter[str] = Counter()
    for n in range(300):
        plan = RetryPlan(retry, budget=budget, clock=clock, rng=random.Random(n))
        try:
            drive_sync(plan, attempt, sleep=lambda s: None)  # time stands still: one window
        except TGIError as exc:
            errors[type(exc).__name__] += 1
    assert sum(errors.values()) == 300
    retries = attempts - 300  # every call's first attempt is not a retry
    # retries were capped by the budget: 0.1 x requests + 1/s x 10 s (time stood still)
    assert retries <= 0.1 * 300 + 10
    # each replica took 50 failures and was ejected; from then on calls fail fast, sending nothing
    assert sum(s["requests"] for s in rs.stats().values()) == 100
    assert all(s["ejected"] for s in rs.stats().values())
    assert errors["NoHealthyReplicaError"] > 0


def route_any(rs: ReplicaSet, a: Attempt) -> str:
    choice = rs.choose(exclude=a.exclude)
    if isinstance(choice, NoneAvailable):
        raise choice.to_error()
    assert isinstance(choice, Pick)
    return choice.url


async def test_async_driver_with_caps_waits_and_never_overfills() -> None:
    """Concurrent tasks on one loop: the Wait choice keeps each replica within its cap."""
    urls = [HEALTHY, SLOW, STORM]
    cap = 2
    rs = ReplicaSet(urls, RoutingPolicy(max_in_flight_per_replica=cap), rng=random.Random(2))
    retry = RetryPolicy(deadline=30.0, backoff_initial=0.001, backoff_max=0.002)
    budget = RetryBudget(retry)
    peak: Counter[str] = Counter()
    live: Counter[str] = Counter()
    rng = random.Random(3)

    async def attempt(a: Attempt) -> str:
        while True:
            choice = rs.choose(exclude=a.exclude)
            if isinstance(choice, Pick):
                break
            if isinstance(choice, Wait):
                remaining = math.inf if a.remaining is None else a.remaining
                if remaining <= 0:
                    raise TGITimeoutError("deadline spent waiting", error_type=DEADLINE)
                await asyncio.sleep(min(choice.seconds, remaining))
                continue
            raise AssertionError(f"unexpected {choice!r}")
        url = a.replica = choice.url
        rs.on_start(url)
        live[url] += 1
        peak[url] = max(peak[url], live[url])
        try:
            await asyncio.sleep(0.001)
            if url == STORM and rng.random() < 0.5:
                raise OverloadedError("Model is overloaded", status=429, replica=url)
        except BaseException as exc:
            rs.on_failure(url, exc)
            raise
        finally:
            live[url] -= 1
        rs.on_success(url, 0.001)
        return "answer"

    async def call() -> Any:
        plan = RetryPlan(retry, budget=budget)
        try:
            return await drive_async(plan, attempt)
        except TGIError as exc:
            return exc

    results = await asyncio.gather(*(call() for _ in range(120)))
    assert len(results) == 120
    for r in results:
        assert r == "answer" or (isinstance(r, TGIError) and r.replica in urls), r
    assert max(peak.values()) <= cap
    assert all(s["in_flight"] == 0 for s in rs.stats().values())
    assert sum(s["requests"] for s in rs.stats().values()) >= 120
