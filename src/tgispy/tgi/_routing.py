"""Replica routing: which replica takes the next attempt, and which replicas are out of rotation.

A pure, I/O-free core (the clock and the random generator are injected). The async client asks
:meth:`ReplicaSet.choose` for a replica and reports back what happened with :meth:`on_start`,
:meth:`on_success`, :meth:`on_failure` and :meth:`on_probe_result`; it never decides health itself.

Health is passive, in the style of Envoy's outlier detection: a replica that fails
``eject_consecutive_failures`` times in a row, or whose recent failure rate reaches
``eject_failure_rate``, is ejected for an interval that doubles with each ejection (up to
``eject_max``). When the interval has passed it must answer a health probe (``GET /health``, done
by the caller when :meth:`ReplicaSet.choose` returns :class:`Probe`) before it takes traffic again.
With every replica ejected, :meth:`~ReplicaSet.choose` returns :class:`NoneAvailable` naming each
replica's last error, so callers fail fast instead of hanging.

Example:
    >>> from tgispy.tgi._policy import RoutingPolicy
    >>> replicas = ReplicaSet(["http://a", "http://b"], RoutingPolicy(strategy="least_outstanding"))
    >>> choice = replicas.choose()
    >>> isinstance(choice, Pick)
    True
    >>> replicas.on_start(choice.url)
    >>> replicas.choose().url != choice.url  # the other one has fewer requests in flight
    True
    >>> replicas.on_success(choice.url, latency=0.2)
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from tgispy.errors import (
    ConfigError,
    ConnectError,
    NoHealthyReplicaError,
    ParseError,
    TGITimeoutError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi._affinity import HashRing, KeyHomes, bounded_choice, load_bound
from tgispy.tgi._policy import RoutingPolicy

__all__ = [
    "Choice",
    "NoneAvailable",
    "Pick",
    "Probe",
    "ReplicaSet",
    "ReplicaState",
    "Wait",
    "counts_for_health",
]

logger = logging.getLogger(__name__)

#: latencies kept per replica for the p50 / p99 in :meth:`ReplicaSet.stats` (the most recent ones)
LATENCY_SAMPLES = 1024

# Bounds of the polling interval suggested by Wait: short enough that a freed slot is taken
# quickly even by a caller that does not wake on completions, long enough not to spin.
_WAIT_MIN = 0.001
_WAIT_MAX = 0.05
_WAIT_DEFAULT = 0.01

# Weight of the past in a replica's health score (one result moves it by 10%).
_SCORE_KEEP = 0.9
# A score never counts below this in costs (a replica at 0 is still retried now and then).
_SCORE_FLOOR = 0.05


@dataclass(frozen=True, slots=True)
class Pick:
    """Send the attempt to ``url`` (call :meth:`ReplicaSet.on_start` before awaiting anything)."""

    url: str


@dataclass(frozen=True, slots=True)
class Probe:
    """``url``'s ejection is over: health-probe it (``GET /health``), report the result with
    :meth:`ReplicaSet.on_probe_result`, then call :meth:`ReplicaSet.choose` again."""

    url: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Every usable replica is at its in-flight cap: wait up to ``seconds`` (or until a request
    finishes), then call :meth:`ReplicaSet.choose` again."""

    seconds: float


@dataclass(frozen=True, slots=True)
class NoneAvailable:
    """Every replica is ejected: fail fast with :class:`~tgispy.errors.NoHealthyReplicaError`.

    Attributes:
        errors: each replica's URL and its last error.
    """

    errors: dict[str, str]

    def to_error(self) -> NoHealthyReplicaError:
        """The error to raise, naming every replica and its last error."""
        return NoHealthyReplicaError(
            f"no healthy TGI replica among {len(self.errors)}: every replica is ejected after "
            "failures; check that the servers are up",
            errors=dict(self.errors),
        )


#: what :meth:`ReplicaSet.choose` returns
Choice: TypeAlias = Pick | Probe | Wait | NoneAvailable


def counts_for_health(error: BaseException) -> bool:
    """Whether ``error`` says something about the replica's health.

    A 422 (the request was invalid), a parse failure of a good response, a cancellation by the
    caller or "no healthy replica" are not the replica's fault; everything else from a replica
    (connect errors, timeouts, 429, 5xx, malformed bodies) is.

    Example:
        >>> from tgispy.errors import OverloadedError, ValidationError
        >>> counts_for_health(OverloadedError("busy", status=429))
        True
        >>> counts_for_health(ValidationError("bad input", status=422))
        False
    """
    if not isinstance(error, Exception):  # CancelledError, KeyboardInterrupt: the caller's choice
        return False
    return not isinstance(error, (ValidationError, ConfigError, ParseError, NoHealthyReplicaError))


#: alias, because :meth:`ReplicaSet.on_failure`'s keyword argument shadows the function's name
_is_health_relevant = counts_for_health


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass
class ReplicaState:
    """Everything the router knows about one replica. Mutated only under the set's lock.

    Attributes:
        url: the replica's base URL.
        capacity: ``max_concurrent_requests`` from ``/info`` (``None`` when unknown).
        in_flight: attempts started and not yet finished.
        ewma_latency: moving average of successful latencies (``None`` before the first one).
        latency_at: when ``ewma_latency`` last changed.
        consecutive_failures: failures since the last success (health-relevant ones only).
        results: the last health-relevant results, ``True`` for a success.
        ejected_until: when an ejected replica may be probed (``None`` when in rotation).
        needs_probe: out of rotation until a health probe succeeds.
        probing_since: when the pending probe was handed out (``None`` when none is pending).
        ejections: how many times the replica was ejected.
        level: the exponent of the next ejection interval (resets after a long healthy stretch).
        returned_at: when the replica last came back into rotation.
        last_error: the last error, as text.
        requests: attempts started.
        successes / failures / cancelled: how the attempts ended.
        errors: failures by error class name.
        latencies: the most recent successful latencies.
        answering: the replica's last word was an answer (even a 429 or a garbled body), not
            a refused connection, a timeout, a 502/503/504 or a failed health probe. In panic
            mode (too few replicas in rotation), answering ones still take traffic.
        score: moving average of health-relevant results (1.0 = all good); never reset by an
            ejection, it ranks ejected replicas when they are all that is left.
        reported_load: requests queued and running on the replica, as its server last reported
            (all clients together; ``None`` when unknown).
        reported_at: when ``reported_load`` was read.
        prefix_hits: keyed requests (``"prefix"`` strategy) sent to their home replica.
        prefix_spills: keyed requests sent here because their home was over its load bound,
            out of rotation or already tried.
        draining: removed from the set (live discovery): takes no new request, and is forgotten
            once its requests in flight are done.
    """

    url: str
    window: int
    capacity: int | None = None
    in_flight: int = 0
    ewma_latency: float | None = None
    latency_at: float | None = None
    consecutive_failures: int = 0
    results: deque[bool] = field(default_factory=deque)
    ejected_until: float | None = None
    needs_probe: bool = False
    probing_since: float | None = None
    ejections: int = 0
    level: int = 0
    returned_at: float | None = None
    last_error: str | None = None
    requests: int = 0
    successes: int = 0
    failures: int = 0
    cancelled: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    answering: bool = True
    score: float = 1.0
    reported_load: float | None = None
    reported_at: float | None = None
    prefix_hits: int = 0
    prefix_spills: int = 0
    draining: bool = False

    def __post_init__(self) -> None:
        self.results = deque(self.results, maxlen=self.window)


class ReplicaSet:
    """The replicas of one client: choice of replica, in-flight caps, passive health, stats.

    Thread-safe: every method takes one lock, so :meth:`stats` may be called from any thread while
    the event loop routes requests.

    Args:
        urls: the replicas' base URLs, distinct.
        policy: strategy, caps and ejection settings (defaults to ``RoutingPolicy()``).
        clock: monotonic seconds; injected so tests are deterministic.
        rng: random source for ``p2c``, ``random`` and tie-breaks.

    Example:
        >>> rs = ReplicaSet(["http://a"], clock=lambda: 0.0)
        >>> from tgispy.errors import ConnectError
        >>> for _ in range(3):
        ...     rs.on_start("http://a")
        ...     rs.on_failure("http://a", ConnectError("refused"))
        >>> rs.choose()
        NoneAvailable(errors={'http://a': 'ConnectError: refused'})
    """

    def __init__(
        self,
        urls: Sequence[str],
        policy: RoutingPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(urls, str):
            raise ConfigError("ReplicaSet needs a sequence of URLs, not one string; wrap it: [url]")
        urls = list(urls)
        if not urls:
            raise ConfigError("ReplicaSet needs at least one replica URL")
        dupes = sorted({u for u in urls if urls.count(u) > 1})
        if dupes:
            raise ConfigError(f"replica URLs must be distinct; remove the duplicates: {dupes}")
        self.policy = policy if policy is not None else RoutingPolicy()
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._replicas = {u: ReplicaState(u, window=self.policy.eject_window) for u in urls}
        self._order = tuple(urls)
        self._next_rr = 0
        self._ring = HashRing(urls) if self.policy.strategy == "prefix" else None
        self._homes = KeyHomes()
        self._order_set = frozenset(urls)
        # a reported load older than this is ignored (the poller stopped or the replica is silent)
        self._load_ttl = 3 * self.policy.load_poll_interval
        self._draining = 0  # replicas removed but with requests still in flight

    @property
    def urls(self) -> tuple[str, ...]:
        """The replicas' URLs, in the order given."""
        return self._order

    def __len__(self) -> int:
        return len(self._order)

    # ---- choice -------------------------------------------------------------------------------
    def choose(self, *, exclude: Collection[str] = (), key: str | None = None) -> Choice:
        """Where the next attempt goes.

        Args:
            exclude: replicas that already failed this request; others are preferred, but an
                excluded replica is used when no other one is in rotation.
            key: the request's routing key (:mod:`._affinity`). With the ``"prefix"`` strategy
                the key's home replica takes it while within its load bound; ignored otherwise.

        Returns:
            :class:`Pick` (send it there), :class:`Probe` (health-probe that ejected replica
            first), :class:`Wait` (every usable replica is at its cap) or :class:`NoneAvailable`
            (every replica is ejected: fail fast).
        """
        with self._lock:
            now = self._clock()
            probe = self._due_probe(now, exclude)
            if probe is not None:
                probe.probing_since = now
                return Probe(probe.url)
            live = self._live() if self._draining else self._replicas.values()
            healthy = [r for r in live if not r.needs_probe]
            if not healthy or len(healthy) < self.policy.panic_threshold * len(self._order):
                return self._choose_in_panic(healthy, exclude)
            preferred = [r for r in healthy if r.url not in exclude] or healthy
            open_ = [r for r in preferred if not self._at_cap(r)]
            if not open_:
                return Wait(self._wait_hint(preferred))
            if key is not None and self._ring is not None:
                return Pick(self._pick_home(key, healthy, open_, now).url)
            return Pick(self._pick(open_, now).url)

    def _pick_home(
        self,
        key: str,
        healthy: Sequence[ReplicaState],
        open_: Sequence[ReplicaState],
        now: float,
    ) -> ReplicaState:
        # The key's home (sticky, balanced by keys: KeyHomes) takes it while open and within
        # prefix_load_factor x the average load of the replicas in rotation. Otherwise the next
        # replica on the key's ring walk within that bound (consistent hashing with bounded
        # loads), and when every one is over it, the p2c choice.
        assert self._ring is not None
        home = self._homes.home(key, self._ring, self._order_set, now)
        loads = {r.url: self._load(r, now) for r in healthy}
        bound = load_bound(loads, self.policy.prefix_load_factor)
        usable = {r.url for r in open_}
        if home in usable and loads[home] + 1 <= bound:
            url: str | None = home
        else:
            url = bounded_choice(
                self._ring, key, loads, self.policy.prefix_load_factor, usable=usable
            )
        chosen = self._replicas[url] if url is not None else self._pick(open_, now)
        if chosen.url == home:
            chosen.prefix_hits += 1
        else:
            chosen.prefix_spills += 1
        return chosen

    def _choose_in_panic(self, healthy: Sequence[ReplicaState], exclude: Collection[str]) -> Choice:
        # Too few replicas in rotation (Envoy's panic threshold). Ejection must not turn partial
        # faults into an outage: ejected replicas that still answer join the healthy ones, and
        # the least bad takes the call (by health score; one that already failed this request
        # counts half). Fail fast only when none answers (refused connections, failed probes).
        candidates = list(healthy) + [r for r in self._live() if r.needs_probe and r.answering]
        if not candidates:
            return NoneAvailable({r.url: r.last_error or "ejected" for r in self._live()})
        open_ = [r for r in candidates if not self._at_cap(r)]
        if not open_:
            return Wait(self._wait_hint(candidates))

        def merit(r: ReplicaState) -> tuple[float, int, float]:
            score = r.score * (0.5 if r.url in exclude else 1.0)
            return (round(score, 2), -r.in_flight, self._rng.random())

        return Pick(max(open_, key=merit).url)

    def _due_probe(self, now: float, exclude: Collection[str]) -> ReplicaState | None:
        due = [
            r
            for r in (self._live() if self._draining else self._replicas.values())
            if r.needs_probe
            and r.ejected_until is not None
            and r.ejected_until <= now
            # one probe at a time per replica; a probe that never reported back expires
            and (r.probing_since is None or now - r.probing_since >= self.policy.probe_timeout)
        ]
        if not due:
            return None
        due.sort(key=lambda r: (r.url in exclude, r.ejected_until))
        return due[0]

    def _cap(self, r: ReplicaState) -> int | None:
        if self.policy.max_in_flight_per_replica is not None:
            return self.policy.max_in_flight_per_replica
        return r.capacity

    def _at_cap(self, r: ReplicaState) -> bool:
        cap = self._cap(r)
        return cap is not None and r.in_flight >= cap

    def _wait_hint(self, saturated: Sequence[ReplicaState]) -> float:
        # The soonest a slot is expected to free: a replica's latency spread over its in-flight
        # requests. Callers that wake on completions will usually come back earlier.
        guesses = [r.ewma_latency / max(r.in_flight, 1) for r in saturated if r.ewma_latency]
        guess = min(guesses) if guesses else _WAIT_DEFAULT
        return min(max(guess, _WAIT_MIN), _WAIT_MAX)

    def _pick(self, open_: Sequence[ReplicaState], now: float) -> ReplicaState:
        strategy = self.policy.strategy
        if len(open_) == 1:
            chosen = open_[0]
        elif strategy == "random":
            chosen = self._rng.choice(open_)
        elif strategy == "round_robin":
            chosen = self._round_robin(open_)
        elif strategy == "least_outstanding":
            fewest = min(r.in_flight for r in open_)
            chosen = self._rng.choice([r for r in open_ if r.in_flight == fewest])
        else:
            a, b = self._rng.sample(list(open_), 2)
            chosen = min((a, b), key=lambda r: self._cost(r, open_, now))
        if strategy == "round_robin":
            self._next_rr = (self._order.index(chosen.url) + 1) % len(self._order)
        return chosen

    def _round_robin(self, open_: Sequence[ReplicaState]) -> ReplicaState:
        usable = {r.url for r in open_}
        n = len(self._order)
        for i in range(n):
            url = self._order[(self._next_rr + i) % n]
            if url in usable:
                return self._replicas[url]
        raise AssertionError("round robin found no open replica")  # pragma: no cover

    def _cost(
        self, r: ReplicaState, peers: Sequence[ReplicaState], now: float
    ) -> tuple[float, float, float]:
        # Peak-EWMA-style cost: expected wait ~ latency x (queue + 1), divided by the replica's
        # health score (the expected number of tries per answer grows as 1 / success rate), so
        # a replica failing most calls loses to one failing a few. A replica without a latency
        # yet borrows the fastest known one (optimistic, so new replicas get tried).
        latency = self._latency(r, now)
        if latency is None:
            known = [x for x in (self._latency(p, now) for p in peers) if x is not None]
            latency = min(known) if known else 0.0
        tries = 1.0 / max(r.score, _SCORE_FLOOR)
        load = r.in_flight if r.reported_at is None else self._load(r, now)
        return (latency * (load + 1) * tries, load, tries)

    def _load(self, r: ReplicaState, now: float) -> float:
        # Requests in flight from this client, or the server's own count (every client's
        # queued and running requests) when it reported one recently: that count includes ours,
        # possibly from before our latest ones were sent, hence the max.
        if r.reported_load is None or r.reported_at is None or now - r.reported_at > self._load_ttl:
            return r.in_flight
        return max(r.in_flight, r.reported_load)

    def _live(self) -> Collection[ReplicaState]:
        if not self._draining:
            return self._replicas.values()
        return [r for r in self._replicas.values() if not r.draining]

    def _latency(self, r: ReplicaState, now: float) -> float | None:
        # The estimate fades while a replica gets no traffic (Finagle's PeakEWMA does the same):
        # otherwise a replica that was slow once would never be picked, so never re-measured.
        if r.ewma_latency is None or r.latency_at is None or self.policy.latency_decay is None:
            return r.ewma_latency
        idle = max(now - r.latency_at, 0.0)
        return r.ewma_latency * math.exp(-idle / self.policy.latency_decay)

    # ---- membership (live discovery) ------------------------------------------------------------
    def update(self, urls: Sequence[str]) -> tuple[list[str], list[str]]:
        """Make ``urls`` the replica set; returns ``(added, removed)``.

        An added replica takes traffic only after a passing health probe (it starts ejected,
        with its probe due now). A removed one drains: it takes no new request and is forgotten
        once its requests in flight are done. An empty ``urls`` is ignored (the set keeps its
        replicas: routing never stops because a name stopped resolving).

        Example:
            >>> rs = ReplicaSet(["http://a"], clock=lambda: 0.0)
            >>> rs.update(["http://a", "http://b"])
            (['http://b'], [])
            >>> rs.choose(key=None)
            Probe(url='http://b')
        """
        new = list(dict.fromkeys(urls))
        if not new:
            return [], []
        with self._lock:
            now = self._clock()
            current = set(self._order)
            added = [u for u in new if u not in current]
            removed = [u for u in self._order if u not in set(new)]
            for url in added:
                r = self._replicas.get(url)
                if r is not None and r.draining:  # came back before it drained: keep its state
                    r.draining = False
                    self._draining -= 1
                    continue
                r = self._replicas[url] = ReplicaState(url, window=self.policy.eject_window)
                r.needs_probe, r.ejected_until, r.answering = True, now, False
                r.last_error = "new replica, not yet health-checked"
            for url in removed:
                r = self._replicas[url]
                if r.in_flight:
                    r.draining = True
                    self._draining += 1
                else:
                    del self._replicas[url]
            self._order = tuple(new)
            self._order_set = frozenset(new)
            if self._ring is not None:
                self._ring = HashRing(new)
            self._next_rr = 0
        if added or removed:
            logger.info("replicas added: %s; draining: %s", added or "none", removed or "none")
        return added, removed

    def _forget_if_drained(self, r: ReplicaState) -> None:
        if r.draining and r.in_flight == 0:
            del self._replicas[r.url]
            self._draining -= 1

    # ---- feedback -----------------------------------------------------------------------------
    def set_capacity(self, url: str, max_in_flight: int | None) -> None:
        """Record ``max_concurrent_requests`` from the replica's ``/info`` (``None``: unknown).

        Used as the in-flight cap unless the policy sets ``max_in_flight_per_replica``.
        """
        if max_in_flight is not None and (
            isinstance(max_in_flight, bool)
            or not isinstance(max_in_flight, int)
            or max_in_flight < 1
        ):
            raise ConfigError(
                f"max_in_flight for {url} must be an int >= 1 or None (got {max_in_flight!r})"
            )
        with self._lock:
            if url in self._replicas:  # else removed by discovery meanwhile
                self._replicas[url].capacity = max_in_flight

    def on_load(self, url: str, load: float | None) -> None:
        """Record the load ``url``'s server reports (requests queued and running, every client's
        together; ``None``: unknown). ``p2c`` and ``"prefix"`` route by it while it is fresher
        than three poll intervals; a replica not in the set is ignored (it was just removed)."""
        with self._lock:
            r = self._replicas.get(url)
            if r is not None:
                r.reported_load = load
                r.reported_at = self._clock() if load is not None else None

    def on_start(self, url: str) -> None:
        """An attempt was sent to ``url``. Call right after :class:`Pick`, before awaiting."""
        with self._lock:
            r = self._get(url)
            r.in_flight += 1
            r.requests += 1

    def on_success(self, url: str, latency: float) -> None:
        """The attempt on ``url`` succeeded after ``latency`` seconds."""
        with self._lock:
            r = self._get(url)
            r.in_flight = max(r.in_flight - 1, 0)
            if r.draining:
                self._forget_if_drained(r)
            r.successes += 1
            r.answering = True
            r.score = _SCORE_KEEP * r.score + (1 - _SCORE_KEEP)
            r.latencies.append(latency)
            self._observe_latency(r, latency)
            if r.needs_probe:  # a late answer from an ejected replica: it still needs its probe
                return
            r.consecutive_failures = 0
            r.results.append(True)

    def on_failure(
        self,
        url: str,
        error: BaseException,
        *,
        counts_for_health: bool | None = None,
        latency: float | None = None,
    ) -> None:
        """The attempt on ``url`` failed with ``error``.

        Args:
            url: the replica.
            error: what went wrong.
            counts_for_health: whether the failure counts against the replica's health. ``None``
                decides from the error (:func:`counts_for_health`: a 422 does not count).
            latency: seconds the attempt took. A failure never lowers the latency estimate (a
                replica that fails fast must not attract traffic), but a slow one raises it, and a
                timeout sets it when none is known yet, so ``p2c`` steers away from a replica that
                hangs.
        """
        counted = _is_health_relevant(error) if counts_for_health is None else counts_for_health
        with self._lock:
            r = self._get(url)
            r.in_flight = max(r.in_flight - 1, 0)
            if r.draining:
                self._forget_if_drained(r)
            if not isinstance(error, Exception):
                r.cancelled += 1
            else:
                r.failures += 1
                r.errors[type(error).__name__] += 1
            if latency is not None and (
                (r.ewma_latency is None and isinstance(error, TGITimeoutError))
                or (r.ewma_latency is not None and latency > r.ewma_latency)
            ):
                self._observe_latency(r, latency)
            if not counted:
                return
            r.last_error = _describe(error)
            r.answering = not isinstance(error, (ConnectError, TGITimeoutError, UnavailableError))
            r.score = _SCORE_KEEP * r.score
            if r.needs_probe:  # already out of rotation: do not extend the ejection
                return
            r.consecutive_failures += 1
            r.results.append(False)
            if self._should_eject(r):
                self._eject(r, self._clock())

    def on_probe_result(self, url: str, ok: bool, error: str | None = None) -> None:
        """Report the health probe handed out by :class:`Probe`.

        A passing probe returns the replica to rotation; a failing one ejects it again for a
        longer interval.
        """
        with self._lock:
            if url not in self._replicas:
                return  # removed by discovery while it was being probed
            r = self._replicas[url]
            now = self._clock()
            r.probing_since = None
            if ok:
                r.answering = True
                if r.needs_probe:
                    r.needs_probe = False
                    r.ejected_until = None
                    r.consecutive_failures = 0
                    r.results.clear()
                    r.returned_at = now
                    logger.info("replica %s passed its health probe; back in rotation", url)
                return
            r.last_error = f"health probe failed: {error}" if error else "health probe failed"
            r.answering = False
            self._eject(r, now, again=True)

    def _observe_latency(self, r: ReplicaState, latency: float) -> None:
        alpha = self.policy.latency_ewma_alpha
        r.ewma_latency = (
            latency if r.ewma_latency is None else alpha * latency + (1 - alpha) * r.ewma_latency
        )
        r.latency_at = self._clock()

    def _should_eject(self, r: ReplicaState) -> bool:
        p = self.policy
        enough = len(r.results) >= p.eject_min_samples
        failing = sum(1 for ok in r.results if not ok) / len(r.results) if r.results else 0.0
        if p.eject_failure_rate is not None and enough and failing >= p.eject_failure_rate:
            return True
        if p.eject_consecutive_failures is None or (
            r.consecutive_failures < p.eject_consecutive_failures
        ):
            return False
        # A streak alone never takes the last replica in rotation out while its recent results
        # are mostly good: with scattered faults on every replica, streaks would eject them all
        # and turn partial faults into a total outage (Envoy's max_ejection_percent guards the
        # same). A replica that mostly fails, or has too few results to judge, is still ejected,
        # so a dead fleet fails fast.
        if any(o is not r and not o.needs_probe for o in self._replicas.values()):
            return True
        return not enough or failing >= (p.eject_failure_rate or 0.5)

    def _eject(self, r: ReplicaState, now: float, *, again: bool = False) -> None:
        p = self.policy
        if r.returned_at is not None and now - r.returned_at >= p.eject_max:
            r.level = 0  # healthy for a long stretch: forget earlier ejections
        r.level += 1
        r.ejections += 1
        interval = min(p.eject_base * 2.0 ** (r.level - 1), p.eject_max)
        if not r.answering:
            # Probing a replica that refuses connections costs nothing: check it often, so a
            # restarted replica is back in rotation within about this interval.
            interval = min(interval, p.reconnect_probe_interval)
        r.ejected_until = now + interval
        r.needs_probe = True
        # Logged under the lock: handlers never call back into the set, and the order of
        # ejections in the log then matches the order they happened in. A failed probe of a
        # replica already out of rotation is no news: it is logged at DEBUG.
        logger.log(
            logging.DEBUG if again else logging.WARNING,
            "replica %s ejected for %.3gs (ejection %d): %s",
            r.url,
            interval,
            r.ejections,
            r.last_error,
        )
        r.returned_at = None
        r.consecutive_failures = 0
        r.results.clear()

    def _get(self, url: str) -> ReplicaState:
        try:
            return self._replicas[url]
        except KeyError:
            raise ConfigError(
                f"unknown replica {url!r}; known replicas: {', '.join(self._order)}"
            ) from None

    # ---- reporting ----------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99, health.

        Example:
            >>> rs = ReplicaSet(["http://a"])
            >>> rs.on_start("http://a"); rs.on_success("http://a", 0.5)
            >>> s = rs.stats()["http://a"]
            >>> (s["requests"], s["latency_p50"], s["ejected"])
            (1, 0.5, False)
        """
        with self._lock:
            now = self._clock()
            out: dict[str, dict[str, Any]] = {}
            draining = [u for u, r in self._replicas.items() if r.draining]
            keys = self._homes.counts()
            for url in (*self._order, *draining):
                r = self._replicas[url]
                lat = sorted(r.latencies)
                out[url] = {
                    "requests": r.requests,
                    "successes": r.successes,
                    "failures": r.failures,
                    "cancelled": r.cancelled,
                    "errors": dict(r.errors),
                    "ejections": r.ejections,
                    "ejected": r.needs_probe,
                    "ejected_for": (
                        max(r.ejected_until - now, 0.0)
                        if r.needs_probe and r.ejected_until is not None
                        else 0.0
                    ),
                    "in_flight": r.in_flight,
                    "capacity": self._cap(r),
                    "latency_ewma": r.ewma_latency,
                    "latency_p50": _percentile(lat, 0.50),
                    "latency_p99": _percentile(lat, 0.99),
                    "last_error": r.last_error,
                    "answering": r.answering,
                    "prefix_keys": keys.get(url, 0),
                    "prefix_hits": r.prefix_hits,
                    "prefix_spills": r.prefix_spills,
                    "reported_load": r.reported_load,
                    "draining": r.draining,
                }
            return out


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``None`` when there are none)."""
    if not ordered:
        return None
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[rank - 1]
