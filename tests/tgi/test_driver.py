"""The one retry driver (``TGIClient.post`` and ``.stream``) over MockTransport, fake clock."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from tgispy.errors import (
    IncompleteGenerationError,
    TGIError,
    TGITimeoutError,
    ValidationError,
)
from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi._client import TGIClient
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy
from tgispy.tgi._response import parse_generate_response
from tgispy.tgi._retry import DEADLINE
from tgispy.tgi._transport import HTTPResponse

from ._fakes import FakeClock

A, B, C = "http://a.test:1", "http://b.test:2", "http://c.test:3"


class Time:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)


def parse(resp: HTTPResponse, replica: str) -> str:
    return parse_generate_response(resp.body).sequences[0].text


def client_over(transport: MockTransport, time: Time, **retry: object) -> TGIClient:
    return TGIClient(
        [A, B, C],
        retry=RetryPolicy(**retry),  # type: ignore[arg-type]
        routing=RoutingPolicy(strategy="round_robin"),
        rng=random.Random(0),
        transport=transport,
        clock=time.clock,
        sleep=time.sleep,
    )


async def test_retries_on_other_replicas_then_succeeds() -> None:
    time = Time()
    by_replica = {
        A: Reply.error(503, "Model is loading", "unavailable"),
        B: Reply.error(503, "Model is loading", "unavailable"),
        C: Reply.generate("answer"),
    }
    transport = MockTransport(lambda req: by_replica[req.replica])
    client = client_over(transport, time, jitter=0.0, backoff_initial=0.1)
    text, meta = await client.post("/generate", {"inputs": "q"}, parse)
    assert (text, meta.replica, meta.attempts) == ("answer", C, 3)
    assert [r.replica for r in transport.requests] == [A, B, C]
    assert time.sleeps == pytest.approx([0.1, 0.2])
    assert all(s["in_flight"] == 0 for s in client.stats().values())


async def test_cheap_failures_fail_over_at_once_and_cost_no_attempt() -> None:
    time = Time()
    by_replica = {
        A: Reply.refuse_connection(),
        B: Reply.error(429, "Model is overloaded", "overloaded"),
        C: Reply.generate("answer"),
    }
    transport = MockTransport(lambda req: by_replica[req.replica])
    client = client_over(transport, time, max_attempts=1)
    text, meta = await client.post("/generate", {"inputs": "q"}, parse)
    assert text == "answer" and meta.replica == C
    assert time.sleeps == []


async def test_gives_up_with_what_the_plan_says() -> None:
    time = Time()
    replies = iter(
        [Reply.error(503, "Model is loading", "unavailable"), Reply.error(422, "bad", "validation")]
    )
    transport = MockTransport(lambda req: next(replies))
    client = client_over(transport, time)
    with pytest.raises(ValidationError) as info:
        await client.post("/generate", {"inputs": "q"}, parse)
    assert info.value.replica == B
    assert "UnavailableError" in "\n".join(getattr(info.value, "__notes__", []))
    assert len(transport.requests) == 2


async def test_a_stream_is_never_retried_after_its_first_event() -> None:
    time = Time()
    token = {
        "index": 1,
        "token": {"id": 1, "text": "a", "logprob": -0.1, "special": False},
        "generated_text": None,
        "details": None,
    }
    broken = {
        "error": "Request failed during generation: boom",
        "error_type": "incomplete_generation",
    }
    transport = MockTransport([Reply(200, sse=(token, broken))])
    client = client_over(transport, time, max_attempts=5)
    events = []
    with pytest.raises(IncompleteGenerationError):
        async for event in client.generate_stream("/generate_stream", {"inputs": "q"}):
            events.append(event)
    assert len(events) == 1 and len(transport.requests) == 1
    assert all(s["in_flight"] == 0 for s in client.stats().values())


async def test_a_stream_failing_before_its_first_event_is_retried_elsewhere() -> None:
    time = Time()
    replies = iter([Reply(drop=True), Reply.stream(["o", "k"])])
    transport = MockTransport(lambda req: next(replies))
    client = client_over(transport, time)
    events = [e async for e in client.generate_stream("/generate_stream", {"inputs": "q"})]
    assert events[-1].generated_text == "ok"
    assert [r.replica for r in transport.requests] == [A, B]


async def test_the_deadline_ends_the_retries() -> None:
    time = Time()

    def slow(req: Recorded) -> Reply:
        return Reply(503, {"error": "loading", "error_type": "unavailable"}, delay=3.0)

    transport = MockTransport(slow, sleep=time.sleep)
    client = client_over(
        transport, time, deadline=10.0, max_attempts=10, jitter=0.0, backoff_initial=1.0
    )
    with pytest.raises(TGITimeoutError) as info:
        await client.post("/generate", {"inputs": "q"}, parse)
    assert info.value.error_type == DEADLINE
    assert time.clock() - 100.0 <= 10.0
    assert "deadline" in str(info.value)


async def test_cancellation_passes_through_and_frees_the_slot() -> None:
    started = asyncio.Event()

    async def hang(req: Recorded) -> Reply:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    transport = MockTransport(hang)
    client = TGIClient([A], transport=transport)
    task = asyncio.create_task(client.post("/generate", {"inputs": "q"}, parse))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = client.stats()[A]
    assert (stats["in_flight"], stats["cancelled"], stats["failures"]) == (0, 1, 0)
    assert len(transport.requests) == 1


async def test_unexpected_exceptions_become_typed_errors() -> None:
    def boom(req: Recorded) -> Reply:
        raise RuntimeError("a bug in a custom transport")

    client = TGIClient([A], retry=RetryPolicy.none(), transport=MockTransport(boom))
    with pytest.raises(TGIError) as info:
        await client.post("/generate", {"inputs": "q"}, parse)
    assert info.value.replica == A
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_health_probes_use_the_configured_path() -> None:
    """Ollama has no /health: an ejected replica must be probed on the path the engine has."""
    time = Time()
    down = {"yes": True}

    def handle(req: Recorded) -> Reply:
        if req.method == "GET":
            return Reply(200, b"Ollama is running") if req.path == "/" else Reply(404, b"")
        return Reply.refuse_connection() if down["yes"] else Reply.generate("back")

    transport = MockTransport(handle, all_routes=True)
    client = TGIClient(
        [A],
        retry=RetryPolicy.none(),
        routing=RoutingPolicy(eject_consecutive_failures=1),
        transport=transport,
        clock=time.clock,
        sleep=time.sleep,
        health_path="/",
    )
    with pytest.raises(TGIError):
        await client.post("/api/generate", {"prompt": "q"}, parse)
    assert client.stats()[A]["ejected"]
    down["yes"] = False
    time.clock.advance(5.0)
    text, _ = await client.post("/api/generate", {"prompt": "q"}, parse)
    assert text == "back"
    assert [(r.method, r.path) for r in transport.requests if r.method == "GET"] == [("GET", "/")]


async def test_ndjson_streams_are_cut_into_lines_across_chunks() -> None:
    chunks = (b'{"n": 1}\n{"n"', b": 2}\n\n", b'{"n": 3, "done": true}')
    transport = MockTransport([Reply(200, sse=chunks)])
    client = TGIClient([A], transport=transport)
    events = [
        e
        async for e in client.stream(
            "/api/generate",
            {"prompt": "q"},
            lambda data, replica: json.loads(data),
            last=lambda e: e.get("done") is True,
            framing="ndjson",
        )
    ]
    assert [e["n"] for e in events] == [1, 2, 3]


async def test_an_engines_own_error_mapping_is_used() -> None:
    seen: list[tuple[int, bytes]] = []

    def engine_errors(
        status: int,
        body: bytes | str,
        *,
        replica: str | None = None,
        headers: object = None,
    ) -> TGIError:
        seen.append((status, body if isinstance(body, bytes) else body.encode()))
        return ValidationError("model 'x' not found", status=status, replica=replica)

    transport = MockTransport([Reply(404, {"error": "model 'x' not found"})])
    client = TGIClient([A], transport=transport)
    with pytest.raises(ValidationError, match="not found"):
        await client.post("/api/generate", {"prompt": "q"}, parse, errors=engine_errors)
    assert seen and seen[0][0] == 404
