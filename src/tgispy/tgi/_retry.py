"""The retry plan: a pure state machine that says "attempt", "sleep" or "give up".

In the spirit of tenacity's ``iter()``: :class:`RetryPlan` holds every retry decision (which errors
are retried, bounded attempts, jittered exponential backoff, ``Retry-After``, the request deadline
and the client's retry budget) and does no I/O. The one driver that performs what it says is
``tgispy.tgi._client._Attempts``, shared by plain and streaming requests.

Example:
    >>> from tgispy.errors import UnavailableError
    >>> plan = RetryPlan(RetryPolicy(max_attempts=3, jitter=0.0), budget=None)
    >>> plan.first()
    DoAttempt(attempt=1, exclude=frozenset())
    >>> plan.after_failure(UnavailableError("loading", status=503), replica="http://a")
    DoSleep(seconds=0.05)
    >>> plan.next_attempt()
    DoAttempt(attempt=2, exclude=frozenset({'http://a'}))
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from tgispy.errors import (
    AllReplicasFailedError,
    ConnectError,
    GenerationError,
    NoHealthyReplicaError,
    OverloadedError,
    TGIError,
    TGITimeoutError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi._policy import RetryPolicy

__all__ = [
    "DEADLINE",
    "DoAttempt",
    "DoSleep",
    "Failure",
    "GiveUp",
    "RetryBudget",
    "RetryPlan",
    "Step",
    "backoff",
    "is_cheap",
    "is_retryable",
    "signals_overload",
]

#: ``error_type`` of the :class:`~tgispy.errors.TGITimeoutError` raised when a request's deadline
#: is spent. Such a timeout is never retried (the time is gone); transports that cut an attempt
#: short because of the deadline may use it too.
DEADLINE: Final = "deadline"

#: a 424 (the model failed while generating) may be a fault of one replica's GPU, so it is retried
#: at most this many times per request, on another replica when one exists
_MAX_GENERATION_RETRIES = 1

# Float slack when comparing a retry budget's balance (0.29 * 100 is 28.999999999999996).
_EPSILON = 1e-9

# The budget's window is kept as this many time slices (bounded memory at any request rate).
_BUDGET_SLICES = 10


@dataclass(frozen=True, slots=True)
class DoAttempt:
    """Make attempt number ``attempt`` (1-based).

    Attributes:
        attempt: the attempt's number; the first is 1.
        exclude: replicas that already failed this request; route elsewhere when possible.
    """

    attempt: int
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DoSleep:
    """Sleep ``seconds``, then ask :meth:`RetryPlan.next_attempt`."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: its number, the replica it ran on, and the error."""

    attempt: int
    replica: str | None
    error: BaseException

    def describe(self) -> str:
        """``"attempt 2 on http://b: OverloadedError: ..."``."""
        where = f" on {self.replica}" if self.replica else ""
        return f"attempt {self.attempt}{where}: {_describe(self.error)}"


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop and raise ``error``.

    Attributes:
        error: the error to raise. The error itself when the last one was not retryable or when
            every attempt failed on one replica; :class:`~tgispy.errors.AllReplicasFailedError`
            naming each replica's errors when several replicas failed; a
            :class:`~tgispy.errors.TGITimeoutError` (``error_type="deadline"``) when the deadline
            ran out. Whichever it is, it names every attempt's error (in its message, its
            ``errors``, or its notes).
        failures: every failed attempt, in order.
    """

    error: BaseException
    failures: tuple[Failure, ...] = ()


#: what the plan tells its driver
Step: TypeAlias = DoAttempt | DoSleep | GiveUp


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def is_retryable(error: BaseException, *, first_token_received: bool = False) -> bool:
    """Whether a failed attempt may be retried (on another replica when one exists).

    Retried: connect errors, timeouts before any byte, 429, 502/503/504, a generation cut short
    (500 / stream error), a malformed or truncated body, other transport errors; a 424 (the model
    failed while generating) too, but :class:`RetryPlan` retries it only once. Never retried: 422
    (:class:`~tgispy.errors.ValidationError`, including context-window errors), configuration and
    parse errors, "no healthy replica", a spent deadline, anything that is not a
    :class:`~tgispy.errors.TGIError`, and any error after a stream's first token (the caller
    already has part of the answer).

    Example:
        >>> from tgispy.errors import OverloadedError, ValidationError
        >>> is_retryable(OverloadedError("busy", status=429))
        True
        >>> is_retryable(ValidationError("bad", status=422))
        False
        >>> is_retryable(OverloadedError("busy", status=429), first_token_received=True)
        False
    """
    if first_token_received or not isinstance(error, TGIError):
        return False
    if isinstance(error, (ValidationError, NoHealthyReplicaError)):
        return False
    if isinstance(error, TGITimeoutError):
        return error.error_type != DEADLINE
    if isinstance(error, GenerationError):
        return True
    return error.retryable


def is_cheap(error: BaseException) -> bool:
    """Whether a failure cost the replica (almost) nothing: a refused connection or a 429.

    Such a failure on a replica the request has not tried yet does not count against
    ``max_attempts`` nor the retry budget: it moves on to an untried replica at once (so a fresh
    client whose first pick is a dead or saturated replica still gets its answer elsewhere).
    Bounded by the number of replicas.

    Example:
        >>> from tgispy.errors import ConnectError, MalformedResponseError
        >>> is_cheap(ConnectError("refused")), is_cheap(MalformedResponseError("bad"))
        (True, False)
    """
    return isinstance(error, (ConnectError, OverloadedError))


def signals_overload(error: BaseException) -> bool:
    """Whether a failure says the fleet may be overloaded: 429, 502/503/504, a timeout.

    Only retries of such failures draw on the retry budget, whose job is to stop retries from
    multiplying the load on an overloaded fleet. Other faults (a malformed or truncated body, a
    dropped connection, a 424/500 of one replica) are failed over within ``max_attempts`` alone:
    capping them by the budget would turn one misbehaving replica into failed calls fleet-wide.

    Example:
        >>> from tgispy.errors import MalformedResponseError, OverloadedError
        >>> signals_overload(OverloadedError("busy", status=429))
        True
        >>> signals_overload(MalformedResponseError("garbled"))
        False
    """
    return isinstance(error, (OverloadedError, UnavailableError, TGITimeoutError))


def backoff(
    attempt: int, policy: RetryPolicy, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds to sleep after failed attempt number ``attempt``: jittered exponential backoff.

    The base delay is ``backoff_initial * backoff_multiplier ** (attempt - 1)``, at most
    ``backoff_max``; ``jitter`` of it is drawn uniformly (``1.0`` = full jitter). A server's
    ``Retry-After`` (cut to ``max_retry_after``) is a floor when ``respect_retry_after`` is set.

    Example:
        >>> import random
        >>> p = RetryPolicy(backoff_initial=0.1, jitter=0.0)
        >>> [backoff(n, p, random.Random(0)) for n in (1, 2, 3)]
        [0.1, 0.2, 0.4]
        >>> backoff(1, p, random.Random(0), retry_after=1.5)
        1.5
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1 (got {attempt})")
    try:
        grown = policy.backoff_initial * policy.backoff_multiplier ** (attempt - 1)
    except OverflowError:
        grown = math.inf
    base = min(grown, policy.backoff_max)
    delay = base * (1.0 - policy.jitter) + rng.random() * base * policy.jitter
    if retry_after is not None and policy.respect_retry_after:
        delay = max(delay, min(max(retry_after, 0.0), policy.max_retry_after))
    return delay


class RetryBudget:
    """A retry budget shared by one client: retries may add at most a fraction of recent load.

    Each request deposits one token, each retry withdraws one. Over the last ``budget_ttl``
    seconds, retries never exceed ``budget_ratio * requests + budget_min_per_s * budget_ttl``, so
    when every replica is down the client sends roughly ``1 + budget_ratio`` times its normal
    traffic instead of ``max_attempts`` times (Finagle's ``RetryBudget``). Thread-safe.

    Args:
        policy: where ``budget_ratio``, ``budget_min_per_s`` and ``budget_ttl`` come from
            (``budget_ratio=None`` turns the budget off: every retry is allowed).
        clock: monotonic seconds; injected so tests are deterministic.

    Example:
        >>> b = RetryBudget(RetryPolicy(budget_ratio=0.5, budget_min_per_s=0.0), clock=lambda: 0.0)
        >>> for _ in range(4):
        ...     b.deposit()
        >>> [b.try_withdraw() for _ in range(3)]
        [True, True, False]
    """

    def __init__(
        self, policy: RetryPolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        p = policy if policy is not None else RetryPolicy()
        self.ratio = p.budget_ratio
        self.reserve = p.budget_min_per_s * p.budget_ttl
        self.ttl = p.budget_ttl
        self._slice = p.budget_ttl / _BUDGET_SLICES
        self._clock = clock
        self._lock = threading.Lock()
        # [slice index, requests, retries], oldest first
        self._slices: deque[list[int]] = deque()

    @property
    def enabled(self) -> bool:
        """``False`` when the policy turned the budget off."""
        return self.ratio is not None

    def _current(self) -> list[int]:
        index = math.floor(self._clock() / self._slice)
        while self._slices and self._slices[0][0] <= index - _BUDGET_SLICES:
            self._slices.popleft()
        if not self._slices or self._slices[-1][0] != index:
            self._slices.append([index, 0, 0])
        return self._slices[-1]

    def _available(self) -> float:
        if self.ratio is None:
            return math.inf
        self._current()
        requests = sum(s[1] for s in self._slices)
        retries = sum(s[2] for s in self._slices)
        return self.reserve + self.ratio * requests - retries

    def deposit(self) -> None:
        """Count one request (its first attempt)."""
        with self._lock:
            self._current()[1] += 1

    def available(self) -> float:
        """Retries the budget would allow now (``inf`` when the budget is off)."""
        with self._lock:
            return self._available()

    def try_withdraw(self) -> bool:
        """Spend one retry if the budget allows it; ``False`` means "do not retry"."""
        with self._lock:
            if self._available() + _EPSILON < 1.0:
                return False
            self._current()[2] += 1
            return True


class RetryPlan:
    """The retry decisions for one request: a pure state machine.

    Call :meth:`first`, make the attempt, and on failure ask :meth:`after_failure` what next:
    :class:`DoAttempt` (retry now), :class:`DoSleep` (sleep, then :meth:`next_attempt`) or
    :class:`GiveUp` (raise its error). Use :meth:`remaining` to cap each attempt's timeouts.
    One plan serves one request, on one task or thread; the :class:`RetryBudget` is what is shared.

    Args:
        policy: attempts, backoff, deadline.
        budget: the client's shared :class:`RetryBudget` (``None``: no budget).
        clock: monotonic seconds; injected so tests are deterministic.
        rng: random source for jitter.
        started_at: when the request started (defaults to now), for the deadline.
        replicas: how many replicas the client routes over; a cheap failure (:func:`is_cheap`)
            on a not yet tried replica is free while an untried one remains.

    Example:
        >>> from tgispy.errors import OverloadedError
        >>> plan = RetryPlan(RetryPolicy(max_attempts=2, jitter=0.0), budget=None)
        >>> plan.first()
        DoAttempt(attempt=1, exclude=frozenset())
        >>> plan.after_failure(OverloadedError("busy", status=429), replica="http://a")
        DoSleep(seconds=0.05)
        >>> plan.next_attempt()
        DoAttempt(attempt=2, exclude=frozenset({'http://a'}))
        >>> step = plan.after_failure(OverloadedError("busy", status=429), replica="http://a")
        >>> type(step.error).__name__
        'OverloadedError'
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        budget: RetryBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        started_at: float | None = None,
        replicas: int = 1,
    ) -> None:
        self.policy = policy
        self._replicas = replicas
        self._free = 0  # cheap failovers to untried replicas: not counted as attempts
        self._budget = budget
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._started = clock() if started_at is None else started_at
        self._deadline_at = None if policy.deadline is None else self._started + policy.deadline
        self._attempt = 0
        self._failures: list[Failure] = []
        self._state = "new"  # new -> attempting <-> sleeping -> done

    @property
    def attempts(self) -> int:
        """Attempts handed out so far."""
        return self._attempt

    @property
    def failures(self) -> tuple[Failure, ...]:
        """Every failed attempt so far, in order."""
        return tuple(self._failures)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or ``None`` without a deadline."""
        if self._deadline_at is None:
            return None
        return max(self._deadline_at - self._clock(), 0.0)

    def first(self) -> DoAttempt:
        """The first attempt. Counts the request in the retry budget."""
        self._expect("new", "first()")
        if self._budget is not None:
            self._budget.deposit()
        return self._attempt_step()

    def after_failure(
        self,
        error: BaseException,
        *,
        replica: str | None = None,
        first_token_received: bool = False,
    ) -> Step:
        """Record that the current attempt failed with ``error``, and decide what comes next.

        Args:
            error: the attempt's error.
            replica: where it ran (defaults to ``error.replica`` for a TGI error).
            first_token_received: a stream already delivered output; it is never retried then.
        """
        self._expect("attempting", "after_failure()")
        if replica is None and isinstance(error, TGIError):
            replica = error.replica
        self._failures.append(Failure(self._attempt, replica, error))
        if not is_retryable(error, first_token_received=first_token_received):
            return self._give_up(self._last_error())
        tried = {f.replica for f in self._failures if f.replica is not None}
        if is_cheap(error) and replica is not None and len(tried) < self._replicas:
            first_here = sum(f.replica == replica for f in self._failures) == 1
            if first_here:
                # Free failover: the replica refused at once; try one not yet tried, now.
                self._free += 1
                return self._next_now_or_give_up()
        generation_failures = sum(isinstance(f.error, GenerationError) for f in self._failures)
        if generation_failures > _MAX_GENERATION_RETRIES:
            return self._give_up(self._exhausted("a 424 generation error is retried only once"))
        if self._attempt - self._free >= self.policy.max_attempts:
            return self._give_up(
                self._exhausted(f"max_attempts={self.policy.max_attempts} reached")
            )
        retry_after = error.retry_after if isinstance(error, TGIError) else None
        delay = backoff(self._attempt, self.policy, self._rng, retry_after)
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            # Sleeping would spend what is left of the deadline; stop now rather than late.
            return self._give_up(self.deadline_error())
        if self._budget is not None and signals_overload(error) and not self._budget.try_withdraw():
            return self._give_up(self._exhausted("the client's retry budget is spent"))
        if delay > 0:
            self._state = "sleeping"
            return DoSleep(delay)
        return self._attempt_step()

    def _next_now_or_give_up(self) -> Step:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            return self._give_up(self.deadline_error())
        return self._attempt_step()

    def next_attempt(self) -> DoAttempt | GiveUp:
        """After a :class:`DoSleep`: the next attempt, or give up if the deadline is spent."""
        self._expect("sleeping", "next_attempt()")
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            return self._give_up(self.deadline_error())
        return self._attempt_step()

    # ---- internals ----------------------------------------------------------------------------
    def _expect(self, state: str, call: str) -> None:
        if self._state != state:
            raise RuntimeError(f"RetryPlan.{call} called in state {self._state!r}; see its docs")

    def _attempt_step(self) -> DoAttempt:
        self._attempt += 1
        self._state = "attempting"
        failed = frozenset(f.replica for f in self._failures if f.replica is not None)
        return DoAttempt(self._attempt, failed)

    def _give_up(self, error: BaseException) -> GiveUp:
        self._state = "done"
        return GiveUp(error, tuple(self._failures))

    def _note_earlier(self, error: BaseException) -> BaseException:
        # The raised error is the last one; the earlier attempts ride along as notes, so a
        # traceback shows every failure of the chain.
        for f in self._failures[:-1]:
            error.add_note(f"earlier {f.describe()}")
        return error

    def _last_error(self) -> BaseException:
        return self._note_earlier(self._failures[-1].error)

    def _exhausted(self, why: str) -> BaseException:
        replicas = {f.replica for f in self._failures if f.replica is not None}
        if len(replicas) < 2:
            error = self._last_error()
            if len(self._failures) > 1:
                error.add_note(f"gave up after {len(self._failures)} attempts: {why}")
            return error
        by_replica: dict[str, list[str]] = {}
        for f in self._failures:
            key = f.replica or f"attempt {f.attempt}"
            by_replica.setdefault(key, []).append(f"attempt {f.attempt}: {_describe(f.error)}")
        last = self._failures[-1].error
        error = AllReplicasFailedError(
            f"all {len(self._failures)} attempts failed on {len(replicas)} replicas ({why})",
            errors={url: "; ".join(texts) for url, texts in by_replica.items()},
            status=last.status if isinstance(last, TGIError) else None,
            error_type=last.error_type if isinstance(last, TGIError) else None,
        )
        error.__cause__ = last
        return error

    def deadline_error(self) -> TGITimeoutError:
        """The error for a spent deadline, naming every failed attempt so far."""
        deadline = self.policy.deadline or 0.0
        if not self._failures:
            return TGITimeoutError(
                f"request deadline of {deadline:g}s spent before an attempt could be made",
                error_type=DEADLINE,
            )
        last = self._failures[-1]
        error = TGITimeoutError(
            f"request deadline of {deadline:g}s spent after "
            f"{len(self._failures)} attempt(s): " + "; ".join(f.describe() for f in self._failures),
            error_type=DEADLINE,
            replica=last.replica,
        )
        error.__cause__ = last.error
        return error
