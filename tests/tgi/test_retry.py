"""The retry plan, backoff and retry budget (fake clock, seeded RNG); the driver that follows
the plan is tested in test_driver.py."""

from __future__ import annotations

import asyncio
import math
import pickle
import random
import threading
from typing import Any

import pytest

from tgispy.errors import (
    AllReplicasFailedError,
    ConfigError,
    ConnectError,
    ContextWindowExceededError,
    GenerationError,
    IncompleteGenerationError,
    InvalidRequestError,
    MalformedResponseError,
    NoHealthyReplicaError,
    OverloadedError,
    ParseError,
    ServerError,
    TGITimeoutError,
    TransportError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi._policy import RetryPolicy
from tgispy.tgi._retry import (
    DEADLINE,
    DoAttempt,
    DoSleep,
    GiveUp,
    RetryBudget,
    RetryPlan,
    backoff,
    is_retryable,
)

from ._fakes import FakeClock

A, B, C = "http://a:1", "http://b:2", "http://c:3"


def unavailable(replica: str | None = A, n: int = 0) -> UnavailableError:
    return UnavailableError(f"Model is loading #{n}", status=503, replica=replica)


def plan_for(
    clock: FakeClock | None = None, budget: RetryBudget | None = None, **policy: Any
) -> RetryPlan:
    return RetryPlan(
        RetryPolicy(**policy), budget=budget, clock=clock or FakeClock(), rng=random.Random(0)
    )


def notes(error: BaseException) -> str:
    return "\n".join(getattr(error, "__notes__", []))


# ---- is_retryable --------------------------------------------------------------------------------
RETRYABLE: list[BaseException] = [
    ConnectError("refused"),
    TGITimeoutError("no first byte"),
    OverloadedError("Model is overloaded", status=429),
    UnavailableError("bad gateway", status=502),
    UnavailableError("unavailable", status=503),
    UnavailableError("gateway timeout", status=504),
    IncompleteGenerationError("incomplete generation", status=500),
    MalformedResponseError("truncated JSON"),
    TransportError("connection reset"),
    GenerationError("CUDA out of memory", status=424),
]
NEVER: list[BaseException] = [
    ValidationError("Input validation error", status=422),
    ContextWindowExceededError("inputs tokens + max_new_tokens must be <= 2048", status=422),
    ConfigError("bad url"),
    InvalidRequestError("top_p must be < 1.0"),
    ParseError("no answer field"),
    NoHealthyReplicaError("all ejected"),
    AllReplicasFailedError("all failed"),
    ServerError("not found", status=404),
    TGITimeoutError("deadline spent", error_type=DEADLINE),
    ValueError("a bug"),
    asyncio.CancelledError(),
    KeyboardInterrupt(),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_retryable_errors(error: BaseException) -> None:
    assert is_retryable(error)
    assert not is_retryable(error, first_token_received=True)  # a stream that started: never


@pytest.mark.parametrize("error", NEVER, ids=lambda e: type(e).__name__)
def test_never_retried(error: BaseException) -> None:
    assert not is_retryable(error)


# ---- backoff -------------------------------------------------------------------------------------
def test_backoff_exponential_without_jitter_is_capped() -> None:
    p = RetryPolicy(backoff_initial=0.1, backoff_multiplier=3.0, backoff_max=1.0, jitter=0.0)
    rng = random.Random(0)
    assert [backoff(n, p, rng) for n in range(1, 6)] == pytest.approx([0.1, 0.3, 0.9, 1.0, 1.0])
    assert backoff(10_000, p, rng) == 1.0  # no overflow


def test_full_jitter_draws_within_zero_and_base() -> None:
    p = RetryPolicy(backoff_initial=0.4, backoff_max=10.0, jitter=1.0)
    rng = random.Random(1)
    draws = [backoff(2, p, rng) for _ in range(200)]
    assert all(0 <= d <= 0.8 for d in draws)
    assert min(draws) < 0.1 and max(draws) > 0.7


def test_partial_jitter_keeps_a_floor() -> None:
    p = RetryPolicy(backoff_initial=1.0, backoff_max=10.0, jitter=0.25)
    draws = [backoff(1, p, random.Random(s)) for s in range(50)]
    assert all(0.75 <= d <= 1.0 for d in draws)


def test_retry_after_is_a_floor_capped_by_max_retry_after() -> None:
    p = RetryPolicy(backoff_initial=0.1, jitter=0.0, max_retry_after=5.0)
    rng = random.Random(0)
    assert backoff(1, p, rng, retry_after=2.0) == 2.0
    assert backoff(1, p, rng, retry_after=60.0) == 5.0
    assert backoff(1, p, rng, retry_after=0.01) == 0.1
    ignore = RetryPolicy(backoff_initial=0.1, jitter=0.0, respect_retry_after=False)
    assert backoff(1, ignore, rng, retry_after=2.0) == 0.1


def test_backoff_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        backoff(0, RetryPolicy(), random.Random(0))


# ---- the plan ------------------------------------------------------------------------------------
def test_retry_then_next_attempt_excludes_failed_replicas() -> None:
    plan = plan_for(jitter=0.0, backoff_initial=0.5)
    assert plan.first() == DoAttempt(1, frozenset())
    assert plan.after_failure(unavailable(A), replica=A) == DoSleep(0.5)
    assert plan.next_attempt() == DoAttempt(2, frozenset({A}))
    assert plan.after_failure(unavailable(B), replica=B) == DoSleep(1.0)
    assert plan.next_attempt() == DoAttempt(3, frozenset({A, B}))
    assert plan.attempts == 3
    assert [f.replica for f in plan.failures] == [A, B]


def test_replica_defaults_to_the_errors_own() -> None:
    plan = plan_for(jitter=0.0)
    plan.first()
    plan.after_failure(unavailable(B))
    assert plan.next_attempt().exclude == frozenset({B})  # type: ignore[union-attr]


def test_zero_backoff_retries_without_sleeping() -> None:
    plan = plan_for(backoff_initial=0.0, backoff_max=0.0)
    plan.first()
    assert plan.after_failure(unavailable(A)) == DoAttempt(2, frozenset({A}))


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("Input validation error: top_k must be > 0", status=422),
        ContextWindowExceededError("too long", status=422),
        ConfigError("bad"),
        ParseError("no field"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_never_retried_errors_give_up_with_that_error(error: BaseException) -> None:
    plan = plan_for()
    plan.first()
    step = plan.after_failure(error, replica=A)
    assert isinstance(step, GiveUp) and step.error is error
    assert notes(error) == ""  # a single attempt: nothing to add


def test_non_retryable_after_retries_raises_it_with_earlier_attempts_noted() -> None:
    plan = plan_for(jitter=0.0)
    plan.first()
    first = unavailable(A, 1)
    plan.after_failure(first)
    plan.next_attempt()
    final = ValidationError("Input validation error", status=422, replica=B)
    step = plan.after_failure(final)
    assert isinstance(step, GiveUp) and step.error is final
    assert "earlier attempt 1 on http://a:1: UnavailableError: Model is loading #1" in notes(final)
    assert [f.error for f in step.failures] == [first, final]


def test_exhausted_on_one_replica_raises_the_last_error() -> None:
    plan = plan_for(max_attempts=3, jitter=0.0)
    plan.first()
    errors = [unavailable(A, n) for n in range(3)]
    steps = []
    for err in errors:
        steps.append(plan.after_failure(err))
        if isinstance(steps[-1], DoSleep):
            plan.next_attempt()
    final = steps[-1]
    assert isinstance(final, GiveUp) and final.error is errors[-1]
    assert "Model is loading #0" in notes(errors[-1])
    assert "Model is loading #1" in notes(errors[-1])
    assert "gave up after 3 attempts: max_attempts=3 reached" in notes(errors[-1])


def test_exhausted_on_several_replicas_names_each() -> None:
    plan = plan_for(max_attempts=3, jitter=0.0)
    plan.first()
    errs = [
        ConnectError("refused", replica=A),
        OverloadedError("Model is overloaded", status=429, replica=B),
        unavailable(A, 7),
    ]
    step: Any = None
    for e in errs:
        step = plan.after_failure(e)
        if isinstance(step, DoSleep):
            plan.next_attempt()
    assert isinstance(step, GiveUp)
    err = step.error
    assert isinstance(err, AllReplicasFailedError)
    assert err.__cause__ is errs[-1]
    assert err.status == 503
    assert set(err.errors) == {A, B}
    assert "attempt 1: ConnectError: refused" in err.errors[A]
    assert "attempt 3: UnavailableError: Model is loading #7" in err.errors[A]
    assert "attempt 2: OverloadedError: Model is overloaded" in err.errors[B]
    assert "all 3 attempts failed on 2 replicas" in str(err)


def test_give_up_errors_pickle_with_every_attempt_named() -> None:
    clock = FakeClock()
    plan = plan_for(clock, max_attempts=2, jitter=0.0, deadline=5.0)
    plan.first()
    plan.after_failure(ConnectError("refused", replica=A))
    plan.next_attempt()
    all_failed = plan.after_failure(unavailable(B, 2))
    assert isinstance(all_failed, GiveUp)
    plan = plan_for(clock, deadline=1.0, jitter=0.0, backoff_initial=0.5)
    plan.first()
    clock.advance(0.9)
    deadline = plan.after_failure(unavailable(A, 3))
    assert isinstance(deadline, GiveUp)
    for err in (all_failed.error, deadline.error):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and str(copy) == str(err)
    assert "refused" in str(all_failed.error) and "loading #2" in str(all_failed.error)
    assert "loading #3" in str(deadline.error)


def test_generation_error_is_retried_once() -> None:
    plan = plan_for(max_attempts=5, jitter=0.0)
    plan.first()
    assert isinstance(plan.after_failure(GenerationError("OOM", status=424, replica=A)), DoSleep)
    plan.next_attempt()
    step = plan.after_failure(GenerationError("OOM again", status=424, replica=B))
    assert isinstance(step, GiveUp)
    assert isinstance(step.error, AllReplicasFailedError)
    assert "retried only once" in str(step.error)


def test_retry_after_is_honoured_in_the_sleep() -> None:
    plan = plan_for(jitter=0.0, backoff_initial=0.05)
    plan.first()
    err = OverloadedError("busy", status=429, replica=A, retry_after=3.0)
    assert plan.after_failure(err) == DoSleep(3.0)


def test_deadline_gives_up_when_sleeping_would_spend_it() -> None:
    clock = FakeClock()
    plan = plan_for(clock, deadline=2.0, jitter=0.0, backoff_initial=0.5, max_attempts=10)
    plan.first()
    assert plan.remaining() == 2.0
    clock.advance(1.6)  # the attempt took 1.6 s; a 0.5 s sleep would pass the deadline
    assert plan.remaining() == pytest.approx(0.4)
    step = plan.after_failure(unavailable(A, 1))
    assert isinstance(step, GiveUp)
    err = step.error
    assert isinstance(err, TGITimeoutError) and err.error_type == DEADLINE
    assert "deadline of 2s spent after 1 attempt(s)" in str(err)
    assert "UnavailableError: Model is loading #1" in str(err)
    assert err.replica == A and isinstance(err.__cause__, UnavailableError)


def test_deadline_rechecked_after_the_sleep() -> None:
    clock = FakeClock()
    plan = plan_for(clock, deadline=1.0, jitter=0.0, backoff_initial=0.5)
    plan.first()
    assert plan.after_failure(unavailable(A)) == DoSleep(0.5)
    clock.advance(1.0)  # the sleep overran (a busy loop)
    assert plan.remaining() == 0.0
    step = plan.next_attempt()
    assert isinstance(step, GiveUp) and isinstance(step.error, TGITimeoutError)


def test_remaining_is_none_without_deadline_and_counts_from_started_at() -> None:
    clock = FakeClock()
    assert plan_for(clock).remaining() is None
    plan = RetryPlan(RetryPolicy(deadline=5.0), clock=clock, started_at=clock.now - 2.0)
    assert plan.remaining() == 3.0


def test_plan_rejects_misuse() -> None:
    plan = plan_for()
    with pytest.raises(RuntimeError, match="after_failure"):
        plan.after_failure(unavailable())
    plan.first()
    with pytest.raises(RuntimeError, match="first"):
        plan.first()
    with pytest.raises(RuntimeError, match="next_attempt"):
        plan.next_attempt()


# ---- retry budget --------------------------------------------------------------------------------
def test_budget_allows_ratio_of_requests_plus_reserve() -> None:
    clock = FakeClock()
    b = RetryBudget(
        RetryPolicy(budget_ratio=0.2, budget_min_per_s=0.5, budget_ttl=4.0), clock=clock
    )
    assert b.enabled and b.available() == 2.0  # the reserve: 0.5/s over 4 s
    for _ in range(10):
        b.deposit()
    assert b.available() == pytest.approx(4.0)
    assert [b.try_withdraw() for _ in range(5)] == [True, True, True, True, False]
    assert b.available() < 1.0


def test_budget_forgets_after_its_ttl() -> None:
    clock = FakeClock()
    b = RetryBudget(
        RetryPolicy(budget_ratio=1.0, budget_min_per_s=0.0, budget_ttl=10.0), clock=clock
    )
    b.deposit()
    assert b.try_withdraw() and not b.try_withdraw()
    clock.advance(5.0)
    assert not b.try_withdraw()  # the spent retry is still recent
    clock.advance(6.0)  # both the request and the retry have left the window
    assert b.available() == 0.0
    b.deposit()
    assert b.try_withdraw()


def test_budget_off_allows_everything() -> None:
    b = RetryBudget(RetryPolicy(budget_ratio=None), clock=FakeClock())
    assert not b.enabled and b.available() == math.inf
    assert all(b.try_withdraw() for _ in range(1000))


def test_budget_is_thread_safe() -> None:
    b = RetryBudget(RetryPolicy(budget_ratio=0.5, budget_min_per_s=0.0), clock=FakeClock())
    for _ in range(1000):
        b.deposit()
    won: list[int] = []

    def grab() -> None:
        won.append(sum(b.try_withdraw() for _ in range(400)))

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(won) == 500


def test_plan_spends_budget_and_gives_up_when_empty() -> None:
    clock = FakeClock()
    budget = RetryBudget(
        RetryPolicy(budget_ratio=0.0, budget_min_per_s=1.0, budget_ttl=1.0), clock=clock
    )
    plan = plan_for(clock, budget=budget, jitter=0.0, max_attempts=5)
    plan.first()
    assert isinstance(plan.after_failure(unavailable(A, 1)), DoSleep)  # the one reserve retry
    plan.next_attempt()
    step = plan.after_failure(unavailable(A, 2))
    assert isinstance(step, GiveUp)
    assert "the client's retry budget is spent" in notes(step.error)


# ---- cheap failures ------------------------------------------------------------------------------
def test_cheap_failures_on_untried_replicas_do_not_count_as_attempts() -> None:
    plan = RetryPlan(RetryPolicy(max_attempts=1), budget=None, rng=random.Random(0), replicas=3)
    plan.first()
    # a refused connection and a 429 move on at once, with no sleep, to an untried replica
    assert plan.after_failure(ConnectError("refused"), replica=A) == DoAttempt(2, frozenset({A}))
    step = plan.after_failure(OverloadedError("busy", status=429), replica=B)
    assert step == DoAttempt(3, frozenset({A, B}))
    # every replica tried: the next failure is counted, and max_attempts=1 is spent
    assert isinstance(plan.after_failure(ConnectError("refused"), replica=C), GiveUp)


def test_costly_failures_and_repeats_still_count() -> None:
    plan = RetryPlan(RetryPolicy(max_attempts=1), budget=None, rng=random.Random(0), replicas=3)
    plan.first()
    assert isinstance(plan.after_failure(MalformedResponseError("bad"), replica=A), GiveUp)
    plan = RetryPlan(
        RetryPolicy(max_attempts=2, jitter=0.0), budget=None, rng=random.Random(0), replicas=3
    )
    plan.first()
    assert isinstance(plan.after_failure(ConnectError("refused"), replica=A), DoAttempt)
    # a second refusal by the same replica is not free
    assert isinstance(plan.after_failure(ConnectError("refused"), replica=A), DoSleep)
