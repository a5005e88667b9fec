"""Optional OpenTelemetry tracing: request and attempt spans, W3C traceparent; free when off."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tgispy.errors import TGIError
from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi import _tracing
from tgispy.tgi._client import TGIClient
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy
from tgispy.tgi._response import parse_generate_response
from tgispy.tgi._transport import HTTPResponse

A, B = "http://a.test:1", "http://b.test:2"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def parse(resp: HTTPResponse, replica: str) -> str:
    return parse_generate_response(resp.body).sequences[0].text


def test_import_and_default_cost_nothing() -> None:
    code = (
        "import sys, tgispy, tgispy.tgi._client, tgispy.tgi._tracing as t\n"
        "assert not t.ENABLED\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules), 'imported otel'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_no_traceparent_when_off() -> None:
    transport = MockTransport(lambda req: Reply.generate("ok"))
    client = TGIClient([A], transport=transport)
    await client.post("/generate", {"inputs": "q"}, parse)
    assert "traceparent" not in {k.lower() for k in transport.requests[0].headers}


@pytest.fixture
def spans() -> Iterator[object]:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracing.enable_tracing(provider)
    try:
        yield exporter
    finally:
        _tracing.disable_tracing()
        provider.shutdown()


async def test_request_and_attempt_spans_with_traceparent(spans: object) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert isinstance(spans, InMemorySpanExporter)
    by_replica = {A: Reply.error(503, "loading", "unavailable"), B: Reply.generate("ok")}
    transport = MockTransport(lambda req: by_replica[req.replica])
    client = TGIClient(
        [A, B],
        routing=RoutingPolicy(strategy="round_robin"),
        retry=RetryPolicy(backoff_initial=0.0, jitter=0.0),
        transport=transport,
    )
    text, meta = await client.post("/generate", {"inputs": "q"}, parse)
    assert (text, meta.replica) == ("ok", B)
    finished = {s.name: [] for s in spans.get_finished_spans()}  # type: ignore[var-annotated]
    for s in spans.get_finished_spans():
        finished[s.name].append(s)
    (request,) = finished["tgispy.request"]
    attempts = finished["tgispy.attempt"]
    assert [a.attributes["server.address"] for a in attempts] == [A, B]
    assert all(a.parent.span_id == request.context.span_id for a in attempts)
    assert not attempts[0].status.is_ok and attempts[1].status.is_ok
    assert request.status.is_ok and request.attributes["tgispy.path"] == "/generate"
    # each attempt sent its own span as the W3C traceparent
    sent = [dict(r.headers)["traceparent"] for r in transport.requests]
    for header, attempt in zip(sent, attempts, strict=True):
        match = TRACEPARENT.match(header)
        assert match is not None, header
        assert int(match.group(1), 16) == request.context.trace_id
        assert int(match.group(2), 16) == attempt.context.span_id


async def test_failed_request_and_streams_are_traced(spans: object) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert isinstance(spans, InMemorySpanExporter)

    def handle(req: Recorded) -> Reply:
        if req.path == "/generate_stream":
            return Reply.stream(["a", "b"])
        return Reply.error(422, "bad input", "validation")

    client = TGIClient([A], transport=MockTransport(handle))
    with pytest.raises(TGIError):
        await client.post("/generate", {"inputs": "q"}, parse)
    events = [e async for e in client.generate_stream("/generate_stream", {"inputs": "q"})]
    assert events[-1].is_final
    requests = [s for s in spans.get_finished_spans() if s.name == "tgispy.request"]
    assert [s.attributes["tgispy.path"] for s in requests] == ["/generate", "/generate_stream"]
    assert not requests[0].status.is_ok and requests[1].status.is_ok
    assert len([s for s in spans.get_finished_spans() if s.name == "tgispy.attempt"]) == 2
