"""ReplicaSet: replica choice, in-flight caps, passive health, probes, stats (fake clock)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

import pytest

from tgispy.errors import (
    ConfigError,
    ConnectError,
    ContextWindowExceededError,
    MalformedResponseError,
    NoHealthyReplicaError,
    OverloadedError,
    TGITimeoutError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi._policy import RoutingPolicy
from tgispy.tgi._routing import (
    NoneAvailable,
    Pick,
    Probe,
    ReplicaSet,
    Wait,
    counts_for_health,
)

from ._fakes import FakeClock

A, B, C, D = "http://a:1", "http://b:2", "http://c:3", "http://d:4"


def make(
    urls: list[str], clock: FakeClock | None = None, seed: int = 0, **policy: object
) -> ReplicaSet:
    return ReplicaSet(
        urls,
        RoutingPolicy(**policy),  # type: ignore[arg-type]
        clock=clock or FakeClock(),
        rng=random.Random(seed),
    )


def pick(rs: ReplicaSet, exclude: tuple[str, ...] = ()) -> str:
    choice = rs.choose(exclude=exclude)
    assert isinstance(choice, Pick), choice
    return choice.url


def fail(rs: ReplicaSet, url: str, error: BaseException | None = None, times: int = 1) -> None:
    for _ in range(times):
        rs.on_start(url)
        rs.on_failure(url, error or ConnectError(f"refused by {url}", replica=url))


def succeed(rs: ReplicaSet, url: str, latency: float = 0.1, times: int = 1) -> None:
    for _ in range(times):
        rs.on_start(url)
        rs.on_success(url, latency)


# ---- construction --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("urls", "fix"),
    [([], "at least one replica"), ([A, B, A], "remove the duplicates"), (A, "wrap it")],
)
def test_bad_url_lists(urls: object, fix: str) -> None:
    with pytest.raises(ConfigError, match=fix):
        ReplicaSet(urls)  # type: ignore[arg-type]


def test_unknown_replica_is_named() -> None:
    rs = make([A, B])
    with pytest.raises(ConfigError, match=r"unknown replica 'http://x'.*http://a:1, http://b:2"):
        rs.on_start("http://x")


# ---- strategies ----------------------------------------------------------------------------------
def test_least_outstanding_picks_fewest_in_flight() -> None:
    rs = make([A, B, C], strategy="least_outstanding")
    rs.on_start(A)
    rs.on_start(B)
    assert pick(rs) == C
    for _ in range(28):
        rs.on_start(pick(rs))
    assert {u: s["in_flight"] for u, s in rs.stats().items()} == {A: 10, B: 10, C: 10}


def test_least_outstanding_breaks_ties_at_random() -> None:
    rs = make([A, B, C], strategy="least_outstanding", seed=3)
    assert {pick(rs) for _ in range(50)} == {A, B, C}


def test_p2c_never_picks_the_slowest_at_equal_load() -> None:
    rs = make([A, B, C, D], strategy="p2c", seed=7)
    for url, latency in [(A, 0.1), (B, 0.2), (C, 0.3), (D, 5.0)]:
        succeed(rs, url, latency)
    counts = Counter(pick(rs) for _ in range(400))
    assert counts[D] == 0
    # A is in 3 of the 6 possible pairs and wins all of them
    assert counts[A] > counts[B] > counts[C] > 0


def test_p2c_weighs_queue_against_latency() -> None:
    rs = make([A, B], strategy="p2c")
    succeed(rs, A, 0.1)
    succeed(rs, B, 0.5)
    assert pick(rs) == A
    for _ in range(4):  # A: 0.1 * 5 = 0.5 ties B's 0.5 * 1, and the shorter queue wins
        rs.on_start(A)
    assert pick(rs) == B
    rs.on_success(A, 0.1)
    assert pick(rs) == A  # 0.1 * 4 < 0.5


def test_p2c_is_optimistic_about_replicas_without_latency() -> None:
    rs = make([A, B], strategy="p2c")
    succeed(rs, A, 1.0)
    rs.on_start(A)  # A busy; B has no latency yet and borrows A's, so its empty queue wins
    assert pick(rs) == B


@pytest.mark.parametrize(("decay", "tried_again"), [(10.0, True), (None, False)])
def test_p2c_tries_a_once_slow_replica_again_as_its_latency_fades(
    decay: float | None, tried_again: bool
) -> None:
    clock = FakeClock()
    rs = make([A, B], clock, strategy="p2c", latency_decay=decay)
    succeed(rs, A, 0.1)
    succeed(rs, B, 5.0)  # a cold start
    picks = []
    for _ in range(3000):  # 300 s of sequential traffic at 0.1 s per request
        url = pick(rs)
        picks.append(url)
        rs.on_start(url)
        clock.advance(0.1)
        rs.on_success(url, 0.1)
    assert (B in picks) is tried_again
    if tried_again:
        # B's 5 s faded below A's 0.1 s after about ln(50) x 10 s, and B then proved fast
        first = picks.index(B)
        assert 350 <= first <= 450
        assert picks[first:].count(B) > 100


def test_round_robin_cycles_and_skips_unusable() -> None:
    clock = FakeClock()
    rs = make([A, B, C], clock, strategy="round_robin", max_in_flight_per_replica=1)
    assert [pick(rs) for _ in range(4)] == [A, B, C, A]
    rs.on_start(B)  # B at its cap of 1
    assert [pick(rs) for _ in range(3)] == [C, A, C]


def test_random_spreads_over_open_replicas_only() -> None:
    rs = make([A, B, C], strategy="random", max_in_flight_per_replica=1, seed=1)
    assert {pick(rs) for _ in range(60)} == {A, B, C}
    rs.on_start(C)
    assert {pick(rs) for _ in range(60)} == {A, B}


# ---- in-flight caps ------------------------------------------------------------------------------
def test_in_flight_cap_produces_wait_then_pick() -> None:
    rs = make([A, B], strategy="least_outstanding", max_in_flight_per_replica=2)
    for _ in range(4):
        rs.on_start(pick(rs))
    choice = rs.choose()
    assert isinstance(choice, Wait)
    assert 0 < choice.seconds <= 0.05
    rs.on_success(B, 0.2)
    assert pick(rs) == B


def test_capacity_from_info_is_the_default_cap() -> None:
    rs = make([A])
    rs.set_capacity(A, 1)
    rs.on_start(pick(rs))
    assert isinstance(rs.choose(), Wait)
    assert rs.stats()[A]["capacity"] == 1
    rs.set_capacity(A, None)  # unknown again: no cap
    assert pick(rs) == A


def test_policy_cap_overrides_info_capacity() -> None:
    rs = make([A], max_in_flight_per_replica=3)
    rs.set_capacity(A, 1)
    for _ in range(3):
        rs.on_start(pick(rs))
    assert isinstance(rs.choose(), Wait)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_set_capacity_rejects_nonsense(bad: object) -> None:
    with pytest.raises(ConfigError, match="int >= 1 or None"):
        make([A]).set_capacity(A, bad)  # type: ignore[arg-type]


def test_wait_hint_follows_latency() -> None:
    rs = make([A], max_in_flight_per_replica=4)
    succeed(rs, A, 0.02)
    for _ in range(4):
        rs.on_start(A)
    choice = rs.choose()
    assert isinstance(choice, Wait)
    assert choice.seconds == pytest.approx(0.02 / 4)


# ---- exclude -------------------------------------------------------------------------------------
def test_exclude_prefers_other_replicas_and_falls_back() -> None:
    rs = make([A, B], strategy="least_outstanding")
    rs.on_start(B)
    assert pick(rs, exclude=(A,)) == B
    assert pick(rs, exclude=(A, B)) == A  # nothing else: use a replica that failed before


def test_exclude_waits_for_other_replica_rather_than_reuse_failed_one() -> None:
    rs = make([A, B], max_in_flight_per_replica=1)
    rs.on_start(B)
    assert isinstance(rs.choose(exclude=(A,)), Wait)


# ---- ejection ------------------------------------------------------------------------------------
def test_eject_after_consecutive_failures() -> None:
    rs = make([A, B], eject_consecutive_failures=3, eject_failure_rate=None)
    fail(rs, A, times=2)
    succeed(rs, A)
    fail(rs, A, times=2)
    assert not rs.stats()[A]["ejected"]  # the success reset the streak
    fail(rs, A)
    s = rs.stats()[A]
    assert s["ejected"] and s["ejections"] == 1
    assert {pick(rs) for _ in range(20)} == {B}


def test_eject_on_failure_rate_once_enough_samples() -> None:
    rs = make(
        [A, B],
        eject_consecutive_failures=None,
        eject_failure_rate=0.5,
        eject_window=20,
        eject_min_samples=10,
    )
    for i in range(9):  # F S F S ... : 5 failures in 9 results, but fewer than 10 samples
        (fail if i % 2 == 0 else succeed)(rs, A)
    assert not rs.stats()[A]["ejected"]
    succeed(rs, A)  # 10 samples, 5 failed: but a success never ejects
    assert not rs.stats()[A]["ejected"]
    fail(rs, A)  # 6 of 11 results failed: rate >= 0.5
    assert rs.stats()[A]["ejected"]


def test_failure_rate_window_forgets_old_results() -> None:
    rs = make(
        [A],
        eject_consecutive_failures=None,
        eject_failure_rate=0.5,
        eject_window=10,
        eject_min_samples=10,
    )
    fail(rs, A)
    fail(rs, A)
    fail(rs, A)
    succeed(rs, A, times=7)  # 3/10 failed
    fail(rs, A)  # window slides: 3 failed of the last 10 still (oldest failure dropped)
    assert rs.stats()[A]["ejected"] is False


def test_ejection_intervals_grow_exponentially_up_to_max() -> None:
    clock = FakeClock()
    rs = make(
        [A],
        clock,
        eject_consecutive_failures=1,
        eject_base=1.0,
        eject_max=5.0,
        reconnect_probe_interval=10.0,
    )
    fail(rs, A)
    intervals = []
    for _ in range(5):
        intervals.append(rs.stats()[A]["ejected_for"])
        until = clock.now + intervals[-1]
        clock.advance(intervals[-1] - 0.01)
        assert isinstance(rs.choose(), NoneAvailable)  # not yet due for a probe
        clock.now = until
        assert rs.choose() == Probe(A)
        rs.on_probe_result(A, False, "connection refused")
    assert intervals == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert rs.stats()[A]["ejections"] == 6


def test_probe_before_return_to_traffic() -> None:
    clock = FakeClock()
    rs = make([A, B], clock, eject_consecutive_failures=2)
    fail(rs, A, times=2)
    clock.advance(1.0)
    assert rs.choose() == Probe(A)
    # while the probe is out, A takes no traffic and is not probed twice
    assert {pick(rs) for _ in range(10)} == {B}
    rs.on_probe_result(A, True)
    assert not rs.stats()[A]["ejected"]
    rs.on_start(B)
    assert pick(rs) == A


def test_probe_that_never_reports_expires() -> None:
    clock = FakeClock()
    rs = make([A], clock, eject_consecutive_failures=1, probe_timeout=5.0)
    fail(rs, A)
    clock.advance(1.0)
    assert rs.choose() == Probe(A)
    clock.advance(4.9)
    assert isinstance(rs.choose(), NoneAvailable)
    clock.advance(0.1)
    assert rs.choose() == Probe(A)


def test_failed_probe_names_the_error() -> None:
    clock = FakeClock()
    rs = make([A], clock, eject_consecutive_failures=1)
    fail(rs, A)
    clock.advance(1.0)
    assert rs.choose() == Probe(A)
    rs.on_probe_result(A, False, "GET /health answered 503")
    choice = rs.choose()
    assert isinstance(choice, NoneAvailable)
    assert choice.errors == {A: "health probe failed: GET /health answered 503"}


def test_ejection_level_resets_after_a_long_healthy_stretch() -> None:
    clock = FakeClock()
    rs = make([A, B], clock, eject_consecutive_failures=1, eject_base=1.0, eject_max=8.0)

    def eject_and_return() -> float:
        fail(rs, A, MalformedResponseError("garbled", replica=A))
        interval = float(rs.stats()[A]["ejected_for"])
        clock.advance(interval)
        assert rs.choose() == Probe(A)
        rs.on_probe_result(A, True)
        return interval

    assert eject_and_return() == 1.0
    clock.advance(1.0)  # flapping: the next ejection is longer
    assert eject_and_return() == 2.0
    clock.advance(8.0)  # healthy for eject_max: start over
    assert eject_and_return() == 1.0


def test_all_ejected_fails_fast_naming_every_replica() -> None:
    rs = make([A, B, C], eject_consecutive_failures=1)
    fail(rs, A, ConnectError("connection refused", replica=A))
    fail(rs, B, UnavailableError("Model is loading", status=503, replica=B))
    fail(rs, C, TGITimeoutError("no first byte in 120s", replica=C))
    choice = rs.choose()
    assert isinstance(choice, NoneAvailable)
    assert set(choice.errors) == {A, B, C}
    assert "ConnectError: connection refused" in choice.errors[A]
    assert "UnavailableError: Model is loading" in choice.errors[B]
    assert "TGITimeoutError: no first byte" in choice.errors[C]
    err = choice.to_error()
    assert isinstance(err, NoHealthyReplicaError)
    assert err.errors == choice.errors
    for url in (A, B, C):
        assert url in str(err)


def test_validation_errors_do_not_count_against_health() -> None:
    rs = make([A], eject_consecutive_failures=2, eject_failure_rate=0.5, eject_min_samples=2)
    for _ in range(10):
        fail(rs, A, ValidationError("Input validation error", status=422, replica=A))
        fail(rs, A, ContextWindowExceededError("too long", status=422, replica=A))
    s = rs.stats()[A]
    assert not s["ejected"]
    assert s["errors"] == {"ValidationError": 10, "ContextWindowExceededError": 10}
    assert s["last_error"] is None
    assert pick(rs) == A


def test_counts_for_health_can_be_overridden() -> None:
    rs = make([A, B], eject_consecutive_failures=2)
    for _ in range(5):
        rs.on_start(A)
        rs.on_failure(A, ConnectError("refused"), counts_for_health=False)
    assert not rs.stats()[A]["ejected"]
    for _ in range(2):
        rs.on_start(B)
        rs.on_failure(B, ValidationError("odd 422", status=422), counts_for_health=True)
    assert rs.stats()[B]["ejected"]


def test_cancellation_is_not_a_replica_failure() -> None:
    rs = make([A], eject_consecutive_failures=1)
    rs.on_start(A)
    rs.on_failure(A, asyncio.CancelledError())
    s = rs.stats()[A]
    assert (s["ejected"], s["cancelled"], s["failures"], s["in_flight"]) == (False, 1, 0, 0)


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (ConnectError("x"), True),
        (OverloadedError("x", status=429), True),
        (TGITimeoutError("x"), True),
        (ValidationError("x", status=422), False),
        (ConfigError("x"), False),
        (NoHealthyReplicaError("x"), False),
        (asyncio.CancelledError(), False),
    ],
)
def test_counts_for_health(error: BaseException, counts: bool) -> None:
    assert counts_for_health(error) is counts


def test_late_results_from_an_ejected_replica_change_nothing() -> None:
    clock = FakeClock()
    rs = make([A, B], clock, eject_consecutive_failures=2)
    for _ in range(5):
        rs.on_start(A)
    rs.on_failure(A, ConnectError("reset"))
    rs.on_failure(A, ConnectError("reset"))  # ejected for 1 s
    until = clock.now + 1.0
    rs.on_success(A, 0.1)  # a late success does not skip the probe
    rs.on_failure(A, ConnectError("reset"))  # late failures do not extend the ejection
    rs.on_failure(A, ConnectError("reset"))
    s = rs.stats()[A]
    assert (s["ejected"], s["ejections"], s["in_flight"]) == (True, 1, 0)
    clock.now = until
    assert rs.choose() == Probe(A)


def test_failures_only_ever_raise_the_latency_estimate() -> None:
    rs = make([A])
    succeed(rs, A, 1.0)
    rs.on_start(A)
    rs.on_failure(A, OverloadedError("busy", status=429), latency=0.001)
    assert rs.stats()[A]["latency_ewma"] == 1.0
    rs.on_start(A)
    rs.on_failure(A, TGITimeoutError("slow"), latency=11.0)
    assert rs.stats()[A]["latency_ewma"] == pytest.approx(0.3 * 11.0 + 0.7 * 1.0)


def test_a_timeout_gives_an_unmeasured_replica_a_latency() -> None:
    rs = make([A, B], strategy="p2c")
    succeed(rs, A, 0.1)
    rs.on_start(B)
    rs.on_failure(B, ConnectError("refused"), latency=0.001)  # fast failures teach nothing
    assert rs.stats()[B]["latency_ewma"] is None
    rs.on_start(B)
    rs.on_failure(B, TGITimeoutError("no first byte"), latency=30.0)
    assert rs.stats()[B]["latency_ewma"] == 30.0
    assert pick(rs) == A


# ---- stats ---------------------------------------------------------------------------------------
def test_stats_per_replica() -> None:
    rs = make([A, B], eject_consecutive_failures=3)
    for ms in range(1, 101):
        succeed(rs, A, ms / 1000)
    fail(rs, B, OverloadedError("busy", status=429), times=2)
    fail(rs, B, ConnectError("refused"))
    rs.on_start(A)
    s = rs.stats()
    assert s[A]["requests"] == 101 and s[A]["successes"] == 100 and s[A]["in_flight"] == 1
    assert s[A]["latency_p50"] == 0.050 and s[A]["latency_p99"] == 0.099
    assert s[A]["errors"] == {} and s[A]["ejected"] is False
    assert s[B]["requests"] == 3 and s[B]["failures"] == 3
    assert s[B]["errors"] == {"OverloadedError": 2, "ConnectError": 1}
    assert s[B]["ejections"] == 1 and s[B]["ejected"] is True
    assert s[B]["latency_p50"] is None and s[B]["latency_p99"] is None
    assert s[B]["last_error"] == "ConnectError: refused"
    # a snapshot: mutating it changes nothing inside
    s[B]["errors"]["OverloadedError"] = 0
    assert rs.stats()[B]["errors"]["OverloadedError"] == 2


def test_thread_safe_under_concurrent_use() -> None:
    rs = ReplicaSet([A, B, C], RoutingPolicy(strategy="least_outstanding"))
    per_thread = 2000
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(per_thread):
                choice = rs.choose()
                assert isinstance(choice, Pick)
                rs.on_start(choice.url)
                rs.on_success(choice.url, 0.001)
                rs.stats()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = rs.stats()
    assert sum(v["requests"] for v in s.values()) == 4 * per_thread
    assert sum(v["successes"] for v in s.values()) == 4 * per_thread
    assert all(v["in_flight"] == 0 for v in s.values())


def test_ejection_and_return_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    rs = make([A], clock, eject_consecutive_failures=1)
    with caplog.at_level("INFO", logger="tgispy.tgi._routing"):
        fail(rs, A, ConnectError("connection refused"))
        clock.advance(1.0)
        assert rs.choose() == Probe(A)
        rs.on_probe_result(A, True)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", f"replica {A} ejected for 1s (ejection 1): ConnectError: connection refused"),
        ("INFO", f"replica {A} passed its health probe; back in rotation"),
    ]


def test_streaks_never_eject_the_last_mostly_healthy_replica() -> None:
    # Scattered faults on every replica: streaks alone must not empty the rotation.
    from tgispy.errors import UnavailableError

    clock = [0.0]
    rs = ReplicaSet(
        ["http://a", "http://b"],
        RoutingPolicy(eject_consecutive_failures=3, eject_failure_rate=0.5),
        clock=lambda: clock[0],
    )
    for url in ("http://a", "http://b"):
        for _ in range(17):
            rs.on_start(url)
            rs.on_success(url, 0.01)
    for url in ("http://a", "http://b"):
        for _ in range(3):
            rs.on_start(url)
            rs.on_failure(url, UnavailableError("503", status=503, replica=url))
    stats = rs.stats()
    assert stats["http://a"]["ejected"] is True  # b was still in rotation: a's streak ejects it
    assert stats["http://b"]["ejected"] is False  # the last one in rotation stays: 85% good
    # ... but a replica that mostly fails is ejected even when it is the last one
    for _ in range(10):
        rs.on_start("http://b")
        rs.on_failure("http://b", UnavailableError("503", status=503, replica="http://b"))
    assert rs.stats()["http://b"]["ejected"] is True


def test_a_replica_that_refuses_connections_is_probed_often() -> None:
    """Its ejection interval stops growing at reconnect_probe_interval: a restart is seen soon."""
    clock = FakeClock()
    rs = make([A, B], clock, eject_consecutive_failures=1, eject_max=60.0)
    rs.on_start(A)
    rs.on_failure(A, ConnectError("refused", replica=A))
    for _ in range(6):
        assert rs.stats()[A]["ejected_for"] <= 1.0
        clock.advance(1.0)
        assert rs.choose() == Probe(A)
        rs.on_probe_result(A, False, "connection refused")
    clock.advance(1.0)
    assert rs.choose() == Probe(A)
    rs.on_probe_result(A, True)
    assert not rs.stats()[A]["ejected"]


def test_with_every_replica_ejected_the_least_bad_that_still_answers_takes_the_call() -> None:
    clock = FakeClock()
    rs = make([A, B, C], clock, eject_consecutive_failures=1, eject_base=30.0)
    for url, error in (
        (A, ConnectError("refused", replica=A)),
        (B, OverloadedError("busy", status=429, replica=B)),
        (C, MalformedResponseError("garbled", replica=C)),
    ):
        rs.on_start(url)
        rs.on_failure(url, error)
    # C did well before its failure: it is the least bad
    for _ in range(5):
        rs.on_start(C)
        rs.on_success(C, 0.1)
    assert all(s["ejected"] for s in rs.stats().values())
    assert rs.choose() == Pick(C)
    assert rs.choose(exclude={C}) == Pick(B)  # another answering one when C already failed
    # when none answers any more (refused, failed probes), fail fast
    for url in (B, C):
        rs.on_start(url)
        rs.on_failure(url, ConnectError("refused", replica=url))
    assert isinstance(rs.choose(), NoneAvailable)
