"""Hypothesis properties of the pure cores: the retry plan, the retry budget, the replica set.

Each property runs a simulated chain of attempts on a fake clock: no sockets, no real time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from tgispy.errors import (
    AllReplicasFailedError,
    ConfigError,
    ConnectError,
    ContextWindowExceededError,
    GenerationError,
    IncompleteGenerationError,
    MalformedResponseError,
    OverloadedError,
    ParseError,
    TGITimeoutError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy
from tgispy.tgi._retry import DEADLINE, DoAttempt, DoSleep, GiveUp, RetryBudget, RetryPlan, Step
from tgispy.tgi._routing import NoneAvailable, Pick, Probe, ReplicaSet, Wait

from ._fakes import FakeClock

REPLICAS = ("http://r0", "http://r1", "http://r2")

# Each error names its attempt in its message, so "accounted for" can be checked by text.
Make = Callable[[int, str, float | None], BaseException]
RETRYABLE: dict[str, Make] = {
    "connect": lambda n, r, ra: ConnectError(f"refused #{n}", replica=r),
    "timeout": lambda n, r, ra: TGITimeoutError(f"no first byte #{n}", replica=r),
    "429": lambda n, r, ra: OverloadedError(f"busy #{n}", status=429, replica=r, retry_after=ra),
    "503": lambda n, r, ra: UnavailableError(
        f"loading #{n}", status=503, replica=r, retry_after=ra
    ),
    "incomplete": lambda n, r, ra: IncompleteGenerationError(f"cut #{n}", status=500, replica=r),
    "malformed": lambda n, r, ra: MalformedResponseError(f"truncated #{n}", replica=r),
    "424": lambda n, r, ra: GenerationError(f"OOM #{n}", status=424, replica=r),
}
NEVER: dict[str, Make] = {
    "422": lambda n, r, ra: ValidationError(f"invalid #{n}", status=422, replica=r),
    "context": lambda n, r, ra: ContextWindowExceededError(f"too long #{n}", status=422),
    "config": lambda n, r, ra: ConfigError(f"bad config #{n}"),
    "parse": lambda n, r, ra: ParseError(f"no answer #{n}"),
}
KINDS = {**RETRYABLE, **NEVER}
NEVER_TYPES = (ValidationError, ConfigError, ParseError)


@dataclass(frozen=True)
class Outcome:
    kind: str  # a key of KINDS, or "ok"
    replica: int
    duration: float
    retry_after: float | None


outcomes = st.builds(
    Outcome,
    kind=st.sampled_from([*KINDS, "ok"]),
    replica=st.integers(0, len(REPLICAS) - 1),
    duration=st.floats(0.0, 3.0),
    retry_after=st.one_of(st.none(), st.floats(0.0, 30.0)),
)


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    initial = draw(st.floats(0.0, 0.5))
    return RetryPolicy(
        max_attempts=draw(st.integers(1, 6)),
        backoff_initial=initial,
        backoff_max=initial + draw(st.floats(0.0, 3.0)),
        backoff_multiplier=draw(st.floats(1.0, 4.0)),
        jitter=draw(st.floats(0.0, 1.0)),
        respect_retry_after=draw(st.booleans()),
        max_retry_after=draw(st.floats(0.0, 10.0)),
        deadline=draw(st.one_of(st.none(), st.floats(0.1, 8.0))),
    )


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def told(error: BaseException) -> str:
    """Everything a user sees of an error: its message (with ``errors``) and its notes."""
    return "\n".join([str(error), *getattr(error, "__notes__", [])])


@dataclass
class Chain:
    steps: list[Step]
    errors: list[BaseException]
    attempts: int
    elapsed: float
    result: str | None


def simulate(policy: RetryPolicy, script: list[Outcome], seed: int) -> Chain:
    """Drive a plan like the client does: each attempt is cut short by the remaining deadline."""
    clock = FakeClock()
    start = clock.now
    plan = RetryPlan(policy, budget=None, clock=clock, rng=random.Random(seed))
    step: Step = plan.first()
    chain = Chain([step], [], 0, 0.0, None)
    while not isinstance(step, GiveUp):
        if policy.deadline is not None:
            assert clock.now - start < policy.deadline, "no attempt or sleep starts after it"
        if isinstance(step, DoSleep):
            clock.advance(step.seconds)
            step = plan.next_attempt()
            chain.steps.append(step)
            continue
        assert isinstance(step, DoAttempt)
        chain.attempts += 1
        assert step.attempt == chain.attempts
        o = (
            script[chain.attempts - 1]
            if chain.attempts <= len(script)
            else Outcome("ok", 0, 0, None)
        )
        replica = REPLICAS[o.replica]
        remaining = plan.remaining()
        error: BaseException
        if remaining is not None and o.duration >= remaining:
            clock.advance(remaining)  # the per-attempt timeout is capped by the deadline
            error = TGITimeoutError(
                f"attempt #{chain.attempts} cut by the deadline", replica=replica
            )
        else:
            clock.advance(o.duration)
            if o.kind == "ok":
                chain.result = f"answer #{chain.attempts}"
                break
            error = KINDS[o.kind](chain.attempts, replica, o.retry_after)
        chain.errors.append(error)
        step = plan.after_failure(error, replica=replica)
        chain.steps.append(step)
        if o.kind in NEVER and not isinstance(error, TGITimeoutError):
            assert isinstance(step, GiveUp) and step.error is error, "never retried"
    chain.elapsed = clock.now - start
    return chain


@settings(max_examples=300, deadline=None)
@given(policy=policies(), script=st.lists(outcomes, max_size=8), seed=st.integers(0, 2**16))
def test_plan_properties(policy: RetryPolicy, script: list[Outcome], seed: int) -> None:
    chain = simulate(policy, script, seed)
    # attempts never exceed the policy
    assert chain.attempts <= policy.max_attempts
    # the deadline bounds the whole chain: sleeps plus attempt durations
    if policy.deadline is not None:
        assert chain.elapsed <= policy.deadline + 1e-9
    sleeps = [s.seconds for s in chain.steps if isinstance(s, DoSleep)]
    assert all(s >= 0 for s in sleeps)
    if chain.result is not None:
        assert not isinstance(chain.steps[-1], GiveUp)
        return
    give_up = chain.steps[-1]
    assert isinstance(give_up, GiveUp)
    # every failure is accounted for, in order, and named by the error raised
    assert [f.error for f in give_up.failures] == chain.errors
    assert [f.attempt for f in give_up.failures] == list(range(1, chain.attempts + 1))
    raised = give_up.error
    for error in chain.errors:
        assert raised is error or describe(error) in told(raised), (describe(error), told(raised))
    # and the plan gave up for a reason, never early
    last = chain.errors[-1]
    generation_failures = sum(isinstance(e, GenerationError) for e in chain.errors)
    if isinstance(raised, TGITimeoutError) and raised.error_type == DEADLINE:
        assert policy.deadline is not None
    elif isinstance(last, NEVER_TYPES):
        assert raised is last
    elif generation_failures < 2:
        assert chain.attempts == policy.max_attempts
    if isinstance(raised, AllReplicasFailedError):
        assert len({f.replica for f in give_up.failures}) >= 2


@settings(max_examples=150, deadline=None)
@given(
    requests=st.integers(1, 300),
    max_attempts=st.integers(1, 8),
    ratio=st.floats(0.0, 1.0),
    min_per_s=st.floats(0.0, 2.0),
    ttl=st.floats(0.5, 10.0),
    step=st.floats(0.0, 0.01),
)
def test_retry_budget_bounds_retries_in_an_outage(
    requests: int, max_attempts: int, ratio: float, min_per_s: float, ttl: float, step: float
) -> None:
    """Every replica is down; retries stay within ratio x requests + the reserve."""
    clock = FakeClock()
    policy = RetryPolicy(
        max_attempts=max_attempts,
        backoff_initial=0.0,
        backoff_max=0.0,
        budget_ratio=ratio,
        budget_min_per_s=min_per_s,
        budget_ttl=ttl,
    )
    budget = RetryBudget(policy, clock=clock)
    start = clock.now
    retries = 0
    for n in range(requests):
        plan = RetryPlan(policy, budget=budget, clock=clock, rng=random.Random(n))
        s: Step = plan.first()
        while isinstance(s, DoAttempt):
            clock.advance(step)
            s = plan.after_failure(UnavailableError("down", status=503, replica=REPLICAS[n % 3]))
            if isinstance(s, DoAttempt):
                retries += 1
        assert isinstance(s, GiveUp)
    bound = ratio * requests + min_per_s * ttl
    if clock.now - start < ttl * 0.9:  # everything is still inside the budget's window
        assert retries <= bound + 1e-6
        if bound >= requests * (max_attempts - 1) + 1:  # the budget never blocks needlessly
            assert retries == requests * (max_attempts - 1)
    else:  # over longer runs the bound holds per window: rate x window
        windows = (clock.now - start) / (ttl * 0.9) + 1
        assert retries <= bound * windows + 1e-6


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["choose", "ok", "fail", "fail422", "probe_ok", "probe_bad", "tick"]),
            st.integers(0, len(REPLICAS) - 1),
            st.floats(0.0, 3.0),
        ),
        max_size=120,
    ),
    strategy=st.sampled_from(["least_outstanding", "p2c", "round_robin", "random"]),
    cap=st.one_of(st.none(), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_replica_set_invariants(
    ops: list[tuple[str, int, float]], strategy: str, cap: int | None, seed: int
) -> None:
    clock = FakeClock()
    rs = ReplicaSet(
        REPLICAS,
        RoutingPolicy(strategy=strategy, max_in_flight_per_replica=cap, eject_min_samples=4),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(seed),
    )
    in_flight: dict[str, int] = dict.fromkeys(REPLICAS, 0)
    for op, i, dt in ops:
        url = REPLICAS[i]
        if op == "tick":
            clock.advance(dt)
        elif op == "choose":
            before = rs.stats()
            choice = rs.choose()
            healthy = [u for u in REPLICAS if not before[u]["ejected"]]
            if isinstance(choice, Pick):
                assert choice.url in healthy, "an ejected replica never takes traffic"
                assert cap is None or in_flight[choice.url] < cap, "caps are respected"
                rs.on_start(choice.url)
                in_flight[choice.url] += 1
            elif isinstance(choice, Probe):
                assert before[choice.url]["ejected"] and before[choice.url]["ejected_for"] == 0
            elif isinstance(choice, Wait):
                assert healthy and cap is not None
                assert all(in_flight[u] >= cap for u in healthy)
                assert 0 < choice.seconds <= 0.05
            else:
                assert isinstance(choice, NoneAvailable)
                assert not healthy, "fail fast only when every replica is ejected"
                assert set(choice.errors) == set(REPLICAS)
        elif op in ("ok", "fail", "fail422") and in_flight[url] > 0:
            in_flight[url] -= 1
            if op == "ok":
                rs.on_success(url, dt)
            elif op == "fail":
                rs.on_failure(url, ConnectError("refused", replica=url))
            else:
                rs.on_failure(url, ValidationError("invalid", status=422, replica=url))
        elif op in ("probe_ok", "probe_bad") and rs.stats()[url]["ejected"]:
            rs.on_probe_result(url, op == "probe_ok", None if op == "probe_ok" else "down")
        stats = rs.stats()
        assert {u: s["in_flight"] for u, s in stats.items()} == in_flight
        for s in stats.values():
            assert s["requests"] == s["successes"] + s["failures"] + s["in_flight"]
            assert s["ejected_for"] <= 60.0
