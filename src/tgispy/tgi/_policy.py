"""Frozen configuration values for the TGI client: timeouts, retries and replica routing.

These are plain values (like httpx's ``Timeout`` and ``Limits``): immutable, hashable, validated on
construction with a :class:`~tgispy.errors.ConfigError` that names the fix. ``None`` means "off"
wherever a field accepts it. The pure cores in :mod:`._retry` and :mod:`._routing` read them; the
async client only passes them along.

Example:
    >>> from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout
    >>> RetryPolicy(max_attempts=5, deadline=30.0).max_attempts
    5
    >>> RoutingPolicy(strategy="least_outstanding").strategy
    'least_outstanding'
    >>> Timeout(total=None).total is None
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from tgispy.errors import ConfigError

__all__ = ["LoadSource", "RetryPolicy", "RoutingPolicy", "Strategy", "Timeout"]

#: replica choice strategies understood by :class:`~tgispy.tgi._routing.ReplicaSet`
Strategy = Literal["least_outstanding", "p2c", "prefix", "round_robin", "random"]

#: engines whose own load report :class:`~tgispy.tgi.TGIClient` can poll (see :mod:`._load`)
LoadSource = Literal["tgi", "vllm", "llamacpp", "sglang"]


def _number(owner: str, name: str, value: object, *, optional: bool = False) -> float | None:
    """Check that ``value`` is a finite real number (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        hint = " or None to turn it off" if optional else ""
        raise ConfigError(f"{owner}.{name} must be a finite number{hint} (got {value!r})")
    return float(value)


def _positive(owner: str, name: str, value: object, *, optional: bool = False) -> None:
    number = _number(owner, name, value, optional=optional)
    if number is not None and number <= 0:
        hint = "; use None to turn it off" if optional else ""
        raise ConfigError(f"{owner}.{name} must be > 0 (got {value!r}){hint}")


def _non_negative(owner: str, name: str, value: object) -> None:
    number = _number(owner, name, value)
    if number is not None and number < 0:
        raise ConfigError(f"{owner}.{name} must be >= 0 (got {value!r})")


def _fraction(owner: str, name: str, value: object, *, allow_zero: bool = True) -> None:
    number = _number(owner, name, value)
    low_ok = number is not None and (number >= 0 if allow_zero else number > 0)
    if not low_ok or (number is not None and number > 1):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"{owner}.{name} must be in {bound} (got {value!r})")


def _int_at_least(
    owner: str, name: str, value: object, low: int, *, optional: bool = False
) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        hint = " or None to turn it off" if optional else ""
        raise ConfigError(f"{owner}.{name} must be an int >= {low}{hint} (got {value!r})")


@dataclass(frozen=True, kw_only=True)
class Timeout:
    """Per-attempt timeouts, in seconds. ``None`` turns a timeout off.

    Attributes:
        connect: time to open the TCP (and TLS) connection to a replica.
        first_byte: time from sending the request to the response headers. For a stream that is
            roughly the time to the first token; for a non-streaming ``/generate`` TGI sends its
            headers only once generation is done, so this bounds the whole generation.
        total: the whole attempt, from connect to the last byte.

    Example:
        >>> Timeout(connect=1.0, total=30.0)
        Timeout(connect=1.0, first_byte=120.0, total=30.0)
    """

    connect: float | None = 5.0
    first_byte: float | None = 120.0
    total: float | None = 600.0

    def __post_init__(self) -> None:
        for name in ("connect", "first_byte", "total"):
            _positive("Timeout", name, getattr(self, name), optional=True)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How a request is retried: bounded attempts, jittered backoff, a deadline and a budget.

    Which errors are retried is decided by :func:`tgispy.tgi._retry.is_retryable` (connect errors,
    timeouts before any byte, 429, 502/503/504, truncated or malformed bodies; never 422); a retry
    goes to another replica when one exists.

    Attributes:
        max_attempts: attempts per request, the first included (``1`` = never retry). A
            refused connection or a 429 on a replica the request has not tried yet is not
            counted. Four, not three: with the only replicas left failing 30% of calls (garbled or
            truncated bodies), three attempts lose 2.7% of calls and four 0.8%; overload failures
            stay capped by the retry budget, so the fourth attempt adds load only where a replica
            misbehaves, not where the fleet is overloaded.
        backoff_initial: base delay before the first retry, in seconds.
        backoff_max: the base delay never grows past this.
        backoff_multiplier: growth of the base delay per attempt.
        jitter: fraction of the base delay that is randomised. ``1.0`` is "full jitter" (a uniform
            draw in ``[0, base]``), ``0.0`` sleeps exactly ``base``.
        respect_retry_after: sleep at least a server's ``Retry-After`` before retrying.
        max_retry_after: a ``Retry-After`` longer than this is cut to this.
        deadline: seconds for the whole chain of attempts and sleeps, or ``None`` for no deadline.
        budget_ratio: retries of overload failures (429, 502/503/504, timeouts) may add at most
            this fraction of the recent requests (a retry budget shared by one client, so an
            overloaded fleet's load is not multiplied); ``None`` turns the budget off. Other
            faults are bounded by ``max_attempts`` only.
        budget_min_per_s: retries per second always allowed, however few requests there were.
        budget_ttl: seconds over which requests and retries count as "recent".

    Example:
        >>> RetryPolicy(max_attempts=4, deadline=10.0).deadline
        10.0
        >>> RetryPolicy.none().max_attempts
        1
    """

    max_attempts: int = 4
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    backoff_multiplier: float = 2.0
    jitter: float = 1.0
    respect_retry_after: bool = True
    max_retry_after: float = 10.0
    deadline: float | None = None
    budget_ratio: float | None = 0.2
    budget_min_per_s: float = 10.0
    budget_ttl: float = 10.0

    def __post_init__(self) -> None:
        owner = "RetryPolicy"
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigError(
                f"{owner}.max_attempts must be an int >= 1 (got {self.max_attempts!r})"
            )
        if self.max_attempts < 1:
            raise ConfigError(
                f"{owner}.max_attempts must be >= 1 (got {self.max_attempts}); "
                "use RetryPolicy.none() for a single attempt without retries"
            )
        _non_negative(owner, "backoff_initial", self.backoff_initial)
        _non_negative(owner, "backoff_max", self.backoff_max)
        if self.backoff_max < self.backoff_initial:
            raise ConfigError(
                f"{owner}.backoff_max ({self.backoff_max}) must be >= backoff_initial "
                f"({self.backoff_initial}); raise backoff_max or lower backoff_initial"
            )
        _number(owner, "backoff_multiplier", self.backoff_multiplier)
        if self.backoff_multiplier < 1:
            raise ConfigError(
                f"{owner}.backoff_multiplier must be >= 1 (got {self.backoff_multiplier}); "
                "use 1.0 for a constant delay"
            )
        _fraction(owner, "jitter", self.jitter)
        if not isinstance(self.respect_retry_after, bool):
            raise ConfigError(
                f"{owner}.respect_retry_after must be True or False "
                f"(got {self.respect_retry_after!r})"
            )
        _non_negative(owner, "max_retry_after", self.max_retry_after)
        _positive(owner, "deadline", self.deadline, optional=True)
        if self.budget_ratio is not None:
            _non_negative(owner, "budget_ratio", self.budget_ratio)
        _non_negative(owner, "budget_min_per_s", self.budget_min_per_s)
        _positive(owner, "budget_ttl", self.budget_ttl)

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy of exactly one attempt: errors are raised as they happen.

        Example:
            >>> RetryPolicy.none().max_attempts
            1
        """
        return cls(max_attempts=1)


@dataclass(frozen=True, kw_only=True)
class RoutingPolicy:
    """How requests are spread over replicas, and when a misbehaving replica is ejected.

    Attributes:
        strategy: ``"p2c"`` (power of two choices: of two random replicas, the one with the lower
            ``(in_flight + 1) * latency``), ``"prefix"`` (prefix affinity: requests that share a
            prompt prefix -- DSPy's instructions and demos, a chat's opening, or an explicit
            ``route_key`` -- go to one home replica, whose prefix cache then holds it; a home
            over its load bound or out of rotation spills to the next replica on a hash ring,
            and requests without a shared prefix use ``p2c``), ``"least_outstanding"`` (fewest
            requests in flight), ``"round_robin"``, or ``"random"`` (DSPy 2.4's policy; for
            comparison only).
        prefix_load_factor: ``"prefix"`` only: a home replica takes a request while its load
            stays within this factor of the fleet's average (consistent hashing with bounded
            loads); past it the request goes to the key's next replica.
        server_load: poll each replica's own load report (``"tgi"`` and ``"vllm"``:
            ``/metrics``; ``"llamacpp"``: ``/slots``; ``"sglang"``: ``/get_load``) in the
            background and route by it, so load from other clients counts; ``None``: off.
        load_poll_interval: seconds between two polls of one replica's load report.
        discovery_interval: resolve each replica URL's host name to all its addresses (a
            Kubernetes headless Service, DNS round robin) and re-resolve it this often, in
            seconds: new addresses join after a health probe, vanished ones drain. ``None``:
            the URLs are used as given.
        max_in_flight_per_replica: cap on one replica's concurrent requests. ``None`` uses the
            replica's ``max_concurrent_requests`` from ``/info`` when known, else no cap.
        eject_consecutive_failures: eject after this many failures in a row (``None``: never).
        eject_failure_rate: eject when at least this fraction of the last ``eject_window``
            results failed, once there are ``eject_min_samples`` of them (``None``: never).
        eject_window: results remembered for the failure rate.
        eject_min_samples: results needed before the failure rate is judged.
        eject_base: first ejection interval, in seconds; each further ejection doubles it.
        eject_max: ejection intervals never grow past this. A replica that stays healthy this long
            after returning starts again from ``eject_base``.
        latency_ewma_alpha: weight of the newest latency in the moving average ``p2c`` compares.
        latency_decay: time constant, in seconds, with which ``p2c`` forgets the latency of a
            replica it has not heard from, so a replica that was slow once (a cold start) is
            tried again; ``None`` never forgets.
        probe_timeout: seconds a health probe may take; after that another probe may be sent.
        panic_threshold: when fewer than this fraction of the replicas are in rotation, ejected
            replicas that still answer take traffic again, least bad first (Envoy's panic
            mode), so ejections never turn partial faults into an outage. ``0`` turns it off
            except when every replica is ejected.
        reconnect_probe_interval: an ejected replica that refuses connections (or fails its
            probe) is probed at least this often, however long its ejection interval has grown:
            such a probe costs nothing, and a restarted replica returns within about this long.

    Example:
        >>> RoutingPolicy(max_in_flight_per_replica=8).max_in_flight_per_replica
        8
    """

    strategy: Strategy = "p2c"
    max_in_flight_per_replica: int | None = None
    eject_consecutive_failures: int | None = 3
    eject_failure_rate: float | None = 0.5
    eject_window: int = 20
    eject_min_samples: int = 10
    eject_base: float = 1.0
    eject_max: float = 60.0
    latency_ewma_alpha: float = 0.3
    latency_decay: float | None = 10.0
    probe_timeout: float = 5.0
    reconnect_probe_interval: float = 1.0
    panic_threshold: float = 0.5
    prefix_load_factor: float = 1.25
    server_load: LoadSource | None = None
    load_poll_interval: float = 1.0
    discovery_interval: float | None = None

    def __post_init__(self) -> None:
        owner = "RoutingPolicy"
        strategies = get_args(Strategy)
        if self.strategy not in strategies:
            raise ConfigError(
                f"{owner}.strategy must be one of {', '.join(map(repr, strategies))} "
                f"(got {self.strategy!r})"
            )
        _int_at_least(
            owner, "max_in_flight_per_replica", self.max_in_flight_per_replica, 1, optional=True
        )
        _int_at_least(
            owner, "eject_consecutive_failures", self.eject_consecutive_failures, 1, optional=True
        )
        if self.eject_failure_rate is not None:
            _fraction(owner, "eject_failure_rate", self.eject_failure_rate, allow_zero=False)
        _int_at_least(owner, "eject_window", self.eject_window, 1)
        _int_at_least(owner, "eject_min_samples", self.eject_min_samples, 1)
        if self.eject_min_samples > self.eject_window:
            raise ConfigError(
                f"{owner}.eject_min_samples ({self.eject_min_samples}) must be <= eject_window "
                f"({self.eject_window}); the window holds only that many results"
            )
        _positive(owner, "eject_base", self.eject_base)
        _positive(owner, "eject_max", self.eject_max)
        if self.eject_max < self.eject_base:
            raise ConfigError(
                f"{owner}.eject_max ({self.eject_max}) must be >= eject_base ({self.eject_base})"
            )
        _fraction(owner, "latency_ewma_alpha", self.latency_ewma_alpha, allow_zero=False)
        _positive(owner, "latency_decay", self.latency_decay, optional=True)
        _positive(owner, "probe_timeout", self.probe_timeout)
        _positive(owner, "reconnect_probe_interval", self.reconnect_probe_interval)
        _fraction(owner, "panic_threshold", self.panic_threshold)
        factor = _number(owner, "prefix_load_factor", self.prefix_load_factor)
        if factor is not None and factor < 1:
            raise ConfigError(
                f"{owner}.prefix_load_factor must be >= 1 (got {self.prefix_load_factor}); "
                "1.25 lets a home replica carry 25% more than the average"
            )
        sources = get_args(LoadSource)
        if self.server_load is not None and self.server_load not in sources:
            raise ConfigError(
                f"{owner}.server_load must be one of {', '.join(map(repr, sources))} or None "
                f"(got {self.server_load!r})"
            )
        _positive(owner, "load_poll_interval", self.load_poll_interval)
        _positive(owner, "discovery_interval", self.discovery_interval, optional=True)
