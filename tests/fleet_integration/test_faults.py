"""One fault at a time, over real HTTP: what the client retries, what it raises, what it counts.

Replicas are in-process sim servers on 127.0.0.1 (or ``tgispy.server`` subprocesses where a
replica must really die, or where the sync face blocks the calling thread). Request counts are
taken on the server side, so "never retried" means the server saw exactly one request.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from tgispy.errors import (
    AllReplicasFailedError,
    NoHealthyReplicaError,
    TGITimeoutError,
    TransportError,
    ValidationError,
)
from tgispy.lm._tgi import HFClientTGI
from tgispy.server._app import FRONT_KEY
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout
from tgispy.tgi._retry import DEADLINE

from ._replicas import (
    EXPECTED,
    TOKEN_S,
    Replica,
    check_outcome,
    client,
    dead_url,
    named_replicas,
    sim,
)
from .conftest import StartProcess, StartReplica

pytestmark = pytest.mark.timeout(60)

#: routes every first attempt to the first replica listed, so a test knows where it lands
FIRST_FIRST = RoutingPolicy(strategy="round_robin")


async def _answer(lm: HFClientTGI, prompt: str = "q", *, stream: bool = False) -> str:
    if stream:
        return "".join([piece async for piece in lm.astream(prompt)])
    (text,) = await lm.acall(prompt)
    return text


async def _run(
    lm: HFClientTGI, calls: int, *, in_flight: int = 16, streams: bool = True
) -> list[object]:
    """``calls`` calls, ``in_flight`` at a time (with ``streams``, every fourth one streams);
    the outcomes, in order."""
    outcomes: list[object] = [None] * calls
    todo = iter(range(calls))

    async def worker() -> None:
        for i in todo:
            try:
                outcomes[i] = await _answer(lm, f"question {i}", stream=streams and i % 4 == 0)
            except Exception as exc:
                outcomes[i] = exc

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(in_flight))), timeout=40.0)
    return outcomes


def _generation_requests(replica: Replica) -> int:
    return replica.requests["/generate"] + replica.requests["/generate_stream"]


# ---- each fault beside one healthy replica -------------------------------------------------------
FAULTS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "429 storm": ({"error_rates": {429: 0.8}}, {"OverloadedError"}),
    "malformed or truncated bodies": (
        {"malformed_rate": 0.3, "truncated_rate": 0.3},
        {"MalformedResponseError", "TransportError"},
    ),
    "dropped connections and streams": ({"drop_rate": 0.5}, {"TransportError"}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_faulty_replica_is_retried_around_and_ejected(
    start: StartReplica, fault: str
) -> None:
    settings, error_names = FAULTS[fault]
    healthy = await start(sim())
    faulty = await start(sim(seed=7, **settings))
    urls = [healthy.url, faulty.url]
    lm = client(urls)

    outcomes = await _run(lm, 300)

    kinds = Counter(check_outcome(o, urls) for o in outcomes)
    assert kinds["ok"] >= 280, kinds
    stats = lm.stats()
    bad = stats[faulty.url]
    assert set(bad["errors"]) <= error_names and bad["errors"], bad
    assert bad["ejections"] >= 1, bad
    assert stats[healthy.url]["errors"] == {}
    # The client's count of attempts is the servers' count of requests: nothing is hidden.
    for replica in (healthy, faulty):
        assert stats[replica.url]["requests"] == _generation_requests(replica)
        assert stats[replica.url]["in_flight"] == 0
    # Only a stream cut after its first token may reach the caller (it is never retried).
    failed = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(e, TransportError) and e.replica == faulty.url for e in failed), failed


async def test_a_slow_replica_gets_little_traffic(start: StartReplica) -> None:
    fast = await start(sim())
    slow = await start(sim(token_latency_s=10 * TOKEN_S))
    lm = client([fast, slow])

    outcomes = await _run(lm, 300)

    assert all(check_outcome(o, [fast.url, slow.url]) == "ok" for o in outcomes)
    stats = lm.stats()
    assert stats[slow.url]["errors"] == {} and stats[slow.url]["ejections"] == 0
    # p2c weighs latency: the 10x slower replica takes far less than half (generous margin).
    assert _generation_requests(slow) < _generation_requests(fast) / 2, stats
    assert stats[slow.url]["latency_p50"] > stats[fast.url]["latency_p50"]


async def test_a_replica_killed_mid_run_loses_no_request(
    start: StartReplica, process: StartProcess
) -> None:
    # Equal replicas at ~0.1 s a request: about half of the 16 calls in flight are on the
    # doomed one when it dies.
    healthy = await start(sim(token_latency_s=5 * TOKEN_S))
    doomed = process(["--sim-text", EXPECTED, "--sim-token-latency", str(5 * TOKEN_S)])
    urls = [healthy.url, doomed.url]
    lm = client(urls)
    done = 0

    async def call(i: int) -> object:
        nonlocal done
        try:
            return await _answer(lm, f"question {i}")
        except Exception as exc:
            return exc
        finally:
            done += 1
            if done == 60:
                doomed.process.kill()

    sem = asyncio.Semaphore(16)

    async def bounded(i: int) -> object:
        async with sem:
            return await call(i)

    outcomes = await asyncio.wait_for(
        asyncio.gather(*(bounded(i) for i in range(300))), timeout=40.0
    )

    # /generate attempts cut by the kill are retried on the healthy replica: all answered.
    assert [check_outcome(o, urls) for o in outcomes] == ["ok"] * 300
    stats = lm.stats()[doomed.url]
    assert stats["ejections"] >= 1 and stats["in_flight"] == 0
    assert set(stats["errors"]) <= {"TransportError", "ConnectError"} and stats["errors"]


# ---- every replica dead --------------------------------------------------------------------------
async def test_all_replicas_dead_fails_fast_naming_each() -> None:
    urls = [dead_url() for _ in range(3)]
    lm = client(urls)

    started = time.monotonic()
    # The first call learns from /info that no replica accepts connections: it sends no
    # generation request at all and fails fast, naming each replica.
    for stream in (False, True, False):
        with pytest.raises(NoHealthyReplicaError) as none:
            await asyncio.wait_for(_answer(lm, stream=stream), timeout=10.0)
        assert not isinstance(none.value, AllReplicasFailedError)
        assert set(none.value.errors) == set(urls)
        assert all("cannot connect" in text for text in none.value.errors.values())
        for url in urls:
            assert url in str(none.value)
    assert all(s["requests"] == 0 for s in lm.stats().values())
    assert time.monotonic() - started < 8.0  # generous: connection refused is immediate
    assert all(s["ejected"] for s in lm.stats().values())


def test_all_replicas_dead_fails_fast_on_the_sync_face() -> None:
    urls = [dead_url() for _ in range(2)]
    lm = client(urls)
    with pytest.raises(NoHealthyReplicaError) as err:
        lm("q")
    assert set(err.value.errors) == set(urls)
    with pytest.raises(NoHealthyReplicaError) as streamed:  # or its AllReplicasFailedError
        list(lm.stream("q"))
    assert named_replicas(streamed.value) == set(urls)


# ---- what is never retried -----------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["generate", "stream"])
async def test_422_is_never_retried(start: StartReplica, stream: bool) -> None:
    replicas = [await start(sim(error_rates={422: 1.0})) for _ in range(2)]
    urls = [r.url for r in replicas]
    lm = client(urls, retry=RetryPolicy(max_attempts=5, backoff_initial=0.0))

    for i in range(10):
        with pytest.raises(ValidationError) as err:
            await asyncio.wait_for(_answer(lm, f"q{i}", stream=stream), timeout=10.0)
        assert err.value.status == 422 and err.value.replica in urls

    assert sum(_generation_requests(r) for r in replicas) == 10  # one request per call
    stats = lm.stats()
    assert all(s["ejections"] == 0 and not s["ejected"] for s in stats.values())  # not their fault


# ---- streams: retried only before their first token ----------------------------------------------
BEFORE_FIRST_TOKEN: dict[str, dict[str, Any]] = {
    "HTTP 503": {"error_rates": {503: 1.0}},
    "429 error event": {"error_rates": {429: 1.0}},  # how TGI reports overload on a stream
    "garbled first event": {"malformed_rate": 1.0},
    "cut inside the first event": {"truncated_rate": 1.0},
}


@pytest.mark.parametrize("failure", list(BEFORE_FIRST_TOKEN))
async def test_stream_failing_before_its_first_token_is_retried(
    start: StartReplica, failure: str
) -> None:
    broken = await start(sim(**BEFORE_FIRST_TOKEN[failure]))
    healthy = await start(sim())
    lm = client([broken, healthy], routing=FIRST_FIRST)

    text = await asyncio.wait_for(_answer(lm, stream=True), timeout=10.0)

    assert text == EXPECTED
    assert broken.requests["/generate_stream"] == 1
    assert healthy.requests["/generate_stream"] == 1
    assert lm.stats()[broken.url]["failures"] == 1


async def test_stream_dropped_after_its_first_token_is_not_retried(start: StartReplica) -> None:
    dropper = await start(sim(drop_rate=1.0))
    healthy = await start(sim())
    lm = client([dropper, healthy], routing=FIRST_FIRST)
    pieces: list[str] = []

    with pytest.raises(TransportError) as err:
        async for piece in lm.astream("q", max_tokens=8):
            pieces.append(piece)

    assert err.value.replica == dropper.url
    assert pieces and EXPECTED.startswith("".join(pieces))  # it did deliver tokens first
    assert dropper.requests["/generate_stream"] == 1
    assert healthy.requests["/generate_stream"] == 0  # never retried
    assert lm.stats()[dropper.url]["in_flight"] == 0


# ---- the deadline --------------------------------------------------------------------------------
async def test_deadline_bounds_a_chain_of_retries(start: StartReplica) -> None:
    replicas = [await start(sim(error_rates={503: 1.0})) for _ in range(2)]
    retry = RetryPolicy(max_attempts=1000, backoff_initial=0.02, deadline=0.6)
    lm = client(replicas, retry=retry, routing=RoutingPolicy(eject_consecutive_failures=None))

    started = time.monotonic()
    with pytest.raises(TGITimeoutError) as err:
        await asyncio.wait_for(_answer(lm), timeout=10.0)
    elapsed = time.monotonic() - started

    assert err.value.error_type == DEADLINE and err.value.replica in {r.url for r in replicas}
    assert sum(_generation_requests(r) for r in replicas) >= 3  # it did retry ...
    assert elapsed < 0.6 + 1.0  # ... within the deadline (generous margin for a busy machine)


@pytest.mark.parametrize("stream", [False, True], ids=["generate", "stream"])
async def test_deadline_cuts_an_attempt_that_hangs(start: StartReplica, stream: bool) -> None:
    hanging = await start(sim(hang_rate=1.0, hang_s=30.0))
    lm = client([hanging], retry=RetryPolicy(deadline=0.5))

    started = time.monotonic()
    with pytest.raises(TGITimeoutError) as err:
        await asyncio.wait_for(_answer(lm, stream=stream), timeout=10.0)

    assert time.monotonic() - started < 0.5 + 1.5
    assert err.value.error_type == DEADLINE and err.value.replica == hanging.url
    assert lm.stats()[hanging.url]["in_flight"] == 0


# ---- ejection and the health probe ---------------------------------------------------------------
async def test_ejected_replica_is_probed_before_it_gets_traffic_again(
    start: StartReplica,
) -> None:
    victim = await start(sim())
    port = victim.port
    healthy = await start(sim())
    routing = RoutingPolicy(strategy="round_robin", eject_base=0.2, eject_max=0.2)
    lm = client([victim, healthy], routing=routing)
    assert await _answer(lm) == EXPECTED

    await victim.stop()  # connection refused from now on
    for i in range(6):
        assert await _answer(lm, f"q{i}") == EXPECTED  # failed over to the healthy one
    assert lm.stats()[victim.url]["ejected"]

    # Back on the same port, but /health says 503: probes fail and it gets no traffic.
    revived = await start(sim(), port=port)
    revived.backend.set_healthy(False)
    deadline = time.monotonic() + 10.0
    while revived.requests["/health"] < 2:
        assert time.monotonic() < deadline, "the ejected replica was never probed"
        assert await _answer(lm) == EXPECTED
        await asyncio.sleep(0.05)
    assert _generation_requests(revived) == 0
    assert lm.stats()[victim.url]["ejected"]

    # Healthy again: the next probe passes and traffic returns, probe first.
    revived.backend.set_healthy(True)
    while _generation_requests(revived) == 0:
        assert time.monotonic() < deadline, "the replica never came back into rotation"
        assert await _answer(lm) == EXPECTED
        await asyncio.sleep(0.05)
    first_generate = revived.log.index("/generate")
    assert revived.log[first_generate - 1] == "/health"
    assert not lm.stats()[victim.url]["ejected"]


# ---- stats and in-flight accounting --------------------------------------------------------------
async def test_stats_report_each_replica(start: StartReplica) -> None:
    steady = await start(sim(token_latency_s=5 * TOKEN_S))
    stormy = await start(sim(error_rates={429: 0.5}, seed=3))
    lm = client(
        [steady, stormy],
        routing=RoutingPolicy(
            strategy="round_robin", eject_consecutive_failures=None, eject_failure_rate=None
        ),
    )

    # A call on a slow replica takes ~1 s: all eight are in flight together long before any
    # ends (polled, not slept: a loaded machine may take a while to start them).
    slow = await start(sim(token_latency_s=50 * TOKEN_S))
    only_slow = client([slow])
    tasks = [asyncio.create_task(_answer(only_slow, f"q{i}")) for i in range(8)]
    for _ in range(80):
        if only_slow.stats()[slow.url]["in_flight"] == 8:
            break
        await asyncio.sleep(0.01)
    assert only_slow.stats()[slow.url]["in_flight"] == 8
    assert await asyncio.gather(*tasks) == [EXPECTED] * 8
    assert only_slow.stats()[slow.url]["in_flight"] == 0

    # /generate only: the server's metrics count the 429s it answers there.
    outcomes = await _run(lm, 100, streams=False)
    kinds = Counter(check_outcome(o, [steady.url, stormy.url]) for o in outcomes)
    assert kinds["ok"] >= 90, kinds

    stats = lm.stats()
    for replica in (steady, stormy):
        s = stats[replica.url]
        assert s["requests"] == _generation_requests(replica) > 0
        assert s["in_flight"] == 0 and s["ejections"] == 0
        assert 0 < s["latency_p50"] <= s["latency_p99"]
        assert s["successes"] + s["failures"] + s["cancelled"] == s["requests"]
    overloaded = stormy.app[FRONT_KEY].metrics.failures.get("overloaded", 0)
    assert stats[stormy.url]["errors"] == {"OverloadedError": overloaded} and overloaded > 0
    assert stats[steady.url]["errors"] == {}


async def test_cancelled_calls_and_abandoned_streams_free_their_slots(
    start: StartReplica,
) -> None:
    slow = await start(sim(token_latency_s=0.02))  # ~200 ms a call
    lm = client([slow], routing=RoutingPolicy(max_in_flight_per_replica=2))

    for i in range(6):  # cancelled by the caller's own timeout, mid-request
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_answer(lm, f"q{i}"), timeout=0.05)
    for _ in range(3):  # streams the caller stops reading
        async for _piece in lm.astream("q"):
            break
    for _ in range(3):  # streams read to the end
        assert await _answer(lm, stream=True) == EXPECTED

    stats = lm.stats()[slow.url]
    assert stats["in_flight"] == 0 and stats["cancelled"] == 9 and stats["ejections"] == 0
    # With a cap of 2, a leaked slot would make these wait forever.
    assert await asyncio.wait_for(_answer(lm), timeout=10.0) == EXPECTED


async def test_many_streams_through_a_capped_replica_do_not_hang(start: StartReplica) -> None:
    replica = await start(sim(token_latency_s=0.0), max_concurrent_requests=4)
    lm = client([replica])

    texts = await asyncio.wait_for(
        asyncio.gather(*(_answer(lm, f"q{i}", stream=True) for i in range(100))), timeout=30.0
    )

    assert texts == [EXPECTED] * 100
    stats = lm.stats()[replica.url]
    assert stats["capacity"] == 4 and stats["in_flight"] == 0 and stats["successes"] == 100


# ---- the sync face, against subprocess replicas --------------------------------------------------
def test_sync_face_fails_over_for_calls_and_streams(process: StartProcess) -> None:
    broken = process(["--sim-text", EXPECTED, "--sim-error-rate", "503=1.0"])
    healthy = process(["--sim-text", EXPECTED])
    lm = client([broken.url, healthy.url], routing=FIRST_FIRST, timeout=Timeout(total=10.0))

    assert lm("q") == [EXPECTED]
    assert "".join(lm.stream("q")) == EXPECTED
    stats = lm.stats()
    assert stats[broken.url]["errors"] == {"UnavailableError": stats[broken.url]["failures"]}
    assert stats[healthy.url]["successes"] == 2
    assert all(s["in_flight"] == 0 for s in stats.values())
