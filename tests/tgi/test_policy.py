"""The frozen config values: documented defaults, immutability, validation naming the fix."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from tgispy.errors import ConfigError
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout


def test_documented_defaults() -> None:
    assert Timeout() == Timeout(connect=5.0, first_byte=120.0, total=600.0)
    r = RetryPolicy()
    assert (r.max_attempts, r.backoff_initial, r.backoff_max, r.backoff_multiplier) == (
        4,
        0.05,
        2.0,
        2.0,
    )
    assert (r.jitter, r.respect_retry_after, r.max_retry_after, r.deadline) == (
        1.0,
        True,
        10.0,
        None,
    )
    assert (r.budget_ratio, r.budget_min_per_s, r.budget_ttl) == (0.2, 10.0, 10.0)
    p = RoutingPolicy()
    assert p.strategy == "p2c"
    assert p.max_in_flight_per_replica is None
    assert (p.eject_consecutive_failures, p.eject_failure_rate) == (3, 0.5)
    assert (p.eject_window, p.eject_min_samples, p.eject_base, p.eject_max) == (20, 10, 1.0, 60.0)
    assert (p.latency_ewma_alpha, p.latency_decay, p.probe_timeout) == (0.3, 10.0, 5.0)


@pytest.mark.parametrize("value", [Timeout(), RetryPolicy(), RoutingPolicy()])
def test_frozen_and_hashable(value: Any) -> None:
    field = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)
    assert hash(value) == hash(dataclasses.replace(value))


def test_none_policy_is_one_attempt() -> None:
    assert RetryPolicy.none().max_attempts == 1
    assert RetryPolicy.none() == RetryPolicy(max_attempts=1)


def test_none_turns_things_off() -> None:
    t = Timeout(connect=None, first_byte=None, total=None)
    assert (t.connect, t.first_byte, t.total) == (None, None, None)
    assert RetryPolicy(deadline=None, budget_ratio=None).budget_ratio is None
    p = RoutingPolicy(eject_consecutive_failures=None, eject_failure_rate=None)
    assert p.eject_consecutive_failures is None and p.eject_failure_rate is None


@pytest.mark.parametrize(
    ("build", "fix"),
    [
        (lambda: Timeout(connect=0), "Timeout.connect must be > 0"),
        (lambda: Timeout(total=-1.0), "use None to turn it off"),
        (lambda: Timeout(first_byte=math.inf), "finite number"),
        (lambda: Timeout(connect="5"), "finite number"),  # type: ignore[arg-type]
        (lambda: RetryPolicy(max_attempts=0), "RetryPolicy.none()"),
        (lambda: RetryPolicy(max_attempts=2.5), "max_attempts must be an int"),  # type: ignore[arg-type]
        (lambda: RetryPolicy(max_attempts=True), "max_attempts must be an int"),
        (lambda: RetryPolicy(backoff_initial=-0.1), "backoff_initial must be >= 0"),
        (lambda: RetryPolicy(backoff_initial=3.0), "raise backoff_max"),
        (lambda: RetryPolicy(backoff_multiplier=0.5), "use 1.0 for a constant delay"),
        (lambda: RetryPolicy(jitter=1.5), "jitter must be in [0, 1]"),
        (lambda: RetryPolicy(respect_retry_after=1), "True or False"),  # type: ignore[arg-type]
        (lambda: RetryPolicy(max_retry_after=-1), "max_retry_after must be >= 0"),
        (lambda: RetryPolicy(deadline=0), "RetryPolicy.deadline must be > 0"),
        (lambda: RetryPolicy(deadline=math.nan), "finite number"),
        (lambda: RetryPolicy(budget_ratio=-0.1), "budget_ratio must be >= 0"),
        (lambda: RetryPolicy(budget_min_per_s=-1), "budget_min_per_s must be >= 0"),
        (lambda: RetryPolicy(budget_ttl=0), "budget_ttl must be > 0"),
        (lambda: RoutingPolicy(strategy="fastest"), "'least_outstanding', 'p2c'"),  # type: ignore[arg-type]
        (lambda: RoutingPolicy(max_in_flight_per_replica=0), "or None to turn it off"),
        (lambda: RoutingPolicy(eject_consecutive_failures=0), "eject_consecutive_failures"),
        (lambda: RoutingPolicy(eject_failure_rate=0.0), "must be in (0, 1]"),
        (lambda: RoutingPolicy(eject_failure_rate=1.1), "must be in (0, 1]"),
        (lambda: RoutingPolicy(eject_min_samples=30), "must be <= eject_window"),
        (lambda: RoutingPolicy(eject_base=0), "eject_base must be > 0"),
        (lambda: RoutingPolicy(eject_max=0.5), "eject_max (0.5) must be >= eject_base"),
        (lambda: RoutingPolicy(latency_ewma_alpha=0), "latency_ewma_alpha must be in (0, 1]"),
        (lambda: RoutingPolicy(probe_timeout=-1), "probe_timeout must be > 0"),
        (lambda: RoutingPolicy(latency_decay=0), "latency_decay must be > 0"),
    ],
)
def test_bad_values_raise_config_error_naming_the_fix(build: Any, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert fix in str(info.value)


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        RetryPolicy(5)  # type: ignore[call-arg]
