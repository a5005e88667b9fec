"""Server-reported load: the parsers, the routing score, and TGIClient's background poller."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi._client import TGIClient
from tgispy.tgi._load import (
    LoadParseError,
    parse_llamacpp_slots,
    parse_prometheus,
    parse_sglang_load,
    parse_tgi_metrics,
    parse_vllm_metrics,
)
from tgispy.tgi._policy import RoutingPolicy
from tgispy.tgi._response import parse_generate_response
from tgispy.tgi._routing import Pick, ReplicaSet
from tgispy.tgi._transport import HTTPResponse

from ._fakes import FakeClock

A, B = "http://127.0.0.2:8080", "http://127.0.0.3:8080"

TGI_METRICS = """# HELP tgi_queue_size Current queue size
# TYPE tgi_queue_size gauge
tgi_queue_size 7
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 3
tgi_request_count 120
"""
VLLM_METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
vllm:num_requests_running{engine="0",model_name="a"} 4.0
vllm:num_requests_running{engine="1",model_name="a"} 1.0
vllm:num_requests_waiting{engine="0",model_name="a"} 6.0
vllm:num_requests_waiting_by_reason{model_name="a",reason="capacity"} 99.0
vllm:gpu_cache_usage_perc{model_name="a"} 0.5
"""


def test_prometheus_parsers() -> None:
    assert parse_tgi_metrics(TGI_METRICS.encode()) == 10.0
    assert parse_tgi_metrics("tgi_batch_current_size 2") == 2.0  # tgispy serve has no queue gauge
    assert parse_vllm_metrics(VLLM_METRICS.encode()) == 11.0
    assert parse_prometheus('x{a="}"} 2 1700000000\nx 1', ["x"]) == {"x": 3.0}
    bad = [
        (b"tgi_request_count 3\n", "has none of"),
        (b"tgi_queue_size many\n", "non-numeric"),
        (b"tgi_queue_size\n", "no value"),
        (b'tgi_queue_size{a="b" 1\n', "unclosed"),
        (b"tgi_queue_size -4\n", "impossible"),
        (b"tgi_queue_size NaN\n", "impossible"),
        (b"\xff\xfe", "not UTF-8"),
        (b"<html>502 Bad Gateway</html>", "has none of"),
    ]
    for body, message in bad:
        with pytest.raises(LoadParseError, match=message):
            parse_tgi_metrics(body)


def test_json_parsers() -> None:
    slots = '[{"id": 0, "is_processing": true}, {"id": 1, "is_processing": false}, '
    slots += '{"id": 2, "is_processing": true}]'
    assert parse_llamacpp_slots(slots) == 2.0
    assert parse_llamacpp_slots(b'[{"id": 0, "state": 1}, {"id": 1, "state": 0}]') == 1.0
    for body in ('{"slots": []}', "[1, 2]", '[{"id": 0}]', "not json"):
        with pytest.raises(LoadParseError):
            parse_llamacpp_slots(body)
    ranks = '[{"dp_rank": 0, "num_reqs": 5, "num_waiting_reqs": 2}, {"dp_rank": 1, "num_reqs": 1}]'
    assert parse_sglang_load(ranks) == 6.0
    assert parse_sglang_load('{"loads": [{"num_running_reqs": 2, "num_waiting_reqs": 3}]}') == 5.0
    assert parse_sglang_load('{"num_reqs": 4}') == 4.0
    for body in ("[]", '[{"dp_rank": 0}]', '"busy"', '[{"num_reqs": true}]', "{"):
        with pytest.raises(LoadParseError):
            parse_sglang_load(body)


def test_p2c_routes_by_reported_load_while_fresh() -> None:
    clock = FakeClock()
    rs = ReplicaSet(
        [A, B], RoutingPolicy(load_poll_interval=1.0), clock=clock, rng=random.Random(0)
    )
    for url in (A, B):
        rs.on_start(url)
        rs.on_success(url, 0.1)
    rs.on_load(A, 30.0)  # other clients keep A busy
    picks = {rs.choose() for _ in range(20)}
    assert picks == {Pick(B)}
    assert rs.stats()[A]["reported_load"] == 30.0
    clock.advance(3.5)  # older than three poll intervals: ignored
    assert {rs.choose() for _ in range(40)} == {Pick(A), Pick(B)}
    # a report below this client's own in-flight count does not hide those requests
    rs.on_load(B, 0.0)
    for _ in range(5):
        rs.on_start(B)
    assert {rs.choose() for _ in range(20)} == {Pick(A)}


def metrics_fleet(per_replica: dict[str, Reply]) -> tuple[MockTransport, list[Recorded]]:
    seen: list[Recorded] = []

    def handle(req: Recorded) -> Reply:
        seen.append(req)
        if req.path in ("/metrics", "/slots", "/get_load"):
            return per_replica[req.replica]
        return Reply.generate("ok")

    return MockTransport(handle), seen


def parse(resp: HTTPResponse, replica: str) -> str:
    return parse_generate_response(resp.body).sequences[0].text


async def test_poller_reads_reports_and_ignores_bad_ones_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, _ = metrics_fleet(
        {A: Reply(200, b"tgi_queue_size 12\ntgi_batch_current_size 4\n"), B: Reply(200, b"oops")}
    )
    client = TGIClient(
        [A, B], routing=RoutingPolicy(server_load="tgi"), transport=transport, rng=random.Random(1)
    )
    with caplog.at_level(logging.WARNING, logger="tgispy.tgi._client"):
        await client.poll_load_once()
        await client.poll_load_once()
    stats = client.stats()
    assert (stats[A]["reported_load"], stats[B]["reported_load"]) == (16.0, None)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and B in warnings[0] and "has none of" in warnings[0]
    for _ in range(10):  # A is busy with other clients' work: B takes every call
        _, meta = await client.post("/generate", {"inputs": "q"}, parse)
        assert meta.replica == B
    await client.stop_background()


async def test_slow_report_is_ignored_and_calls_go_on(caplog: pytest.LogCaptureFixture) -> None:
    transport, _ = metrics_fleet(
        {A: Reply(200, b"[]", delay=5.0), B: Reply(200, b'[{"is_processing": true}]')}
    )
    client = TGIClient(
        [A, B],
        routing=RoutingPolicy(server_load="llamacpp", load_poll_interval=0.05),
        transport=transport,
    )
    with caplog.at_level(logging.WARNING, logger="tgispy.tgi._client"):
        await client.poll_load_once()
    assert client.stats()[A]["reported_load"] is None
    assert client.stats()[B]["reported_load"] == 1.0
    assert "ignoring the load report of " + A in caplog.text


async def test_background_poller_is_lazy_bounded_and_stops() -> None:
    transport, seen = metrics_fleet({A: Reply(200, b'{"num_reqs": 2}'), B: Reply(200, b"[]")})
    client = TGIClient(
        [A, B],
        routing=RoutingPolicy(server_load="sglang", load_poll_interval=0.02),
        transport=transport,
    )
    await asyncio.sleep(0.05)
    assert seen == []  # nothing before the first request
    await client.post("/generate", {"inputs": "q"}, parse)
    await asyncio.sleep(0.2)
    polls = [r for r in seen if r.path == "/get_load"]
    # one poll per replica per interval at most (the first one at start)
    assert 2 <= len(polls) <= 2 * (0.2 / 0.02 + 2)
    assert {r.replica for r in polls} == {A, B}
    await client.stop_background()
    count = len(seen)
    await asyncio.sleep(0.06)
    assert len(seen) == count
    assert client.stats()[A]["reported_load"] == 2.0


async def test_no_load_source_no_background() -> None:
    transport, seen = metrics_fleet({})
    client = TGIClient([A, B], transport=transport)
    for _ in range(3):
        await client.post("/generate", {"inputs": "q"}, parse)
    await asyncio.sleep(0.01)
    assert [r.path for r in seen] == ["/generate"] * 3
    assert client._background_task is None
    await client.poll_load_once()  # a no-op without a source
    assert all(s["reported_load"] is None for s in client.stats().values())
