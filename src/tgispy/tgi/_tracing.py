"""Optional OpenTelemetry tracing: a span per LM request and per attempt, W3C ``traceparent``.

Off by default, and then free: nothing here imports OpenTelemetry, and the client only reads
:data:`ENABLED`. :func:`enable_tracing` (``pip install 'tgispy[otel]'``) turns it on for the
process: every :class:`~tgispy.tgi.TGIClient` request (one LM call, or one of its ``n`` chat
requests) gets a ``tgispy.request`` span, child of whatever span is current (a program's, a web
request's), and each try on a replica a ``tgispy.attempt`` span under it, whose context is sent
to the engine as the W3C ``traceparent`` header (TGI and vLLM continue the trace server-side).

Example:
    >>> from tgispy.tgi._tracing import enable_tracing, disable_tracing
    >>> enable_tracing()  # doctest: +SKIP
    >>> lm("question")    # doctest: +SKIP  -> spans tgispy.request > tgispy.attempt
    >>> disable_tracing()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ENABLED", "disable_tracing", "enable_tracing"]

#: whether requests are traced (read by the client on every request; ``False`` costs nothing)
ENABLED = False

_tracer: Any = None
_propagator: Any = None
_trace: Any = None


def enable_tracing(tracer_provider: Any = None) -> None:
    """Trace every request of every client from now on.

    Args:
        tracer_provider: an OpenTelemetry ``TracerProvider``; ``None`` uses the global one (set
            up by your application, ``opentelemetry-instrument`` or the SDK).

    Raises:
        ImportError: OpenTelemetry is not installed (``pip install 'tgispy[otel]'``).
    """
    global ENABLED, _tracer, _propagator, _trace
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tracing needs OpenTelemetry: pip install 'tgispy[otel]'", name=exc.name
        ) from exc
    _trace = trace
    _tracer = trace.get_tracer("tgispy", tracer_provider=tracer_provider)
    _propagator = TraceContextTextMapPropagator()
    ENABLED = True


def disable_tracing() -> None:
    """Stop tracing (requests already in flight finish their spans)."""
    global ENABLED
    ENABLED = False


def start_request(path: str, replicas: int, route_key: str | None) -> Any:
    """The span of one request (all its attempts), child of the current span."""
    attributes: dict[str, Any] = {"tgispy.path": path, "tgispy.replicas": replicas}
    if route_key is not None:
        attributes["tgispy.route_key"] = route_key
    return _tracer.start_span("tgispy.request", kind=_trace.SpanKind.CLIENT, attributes=attributes)


def start_attempt(
    request_span: Any, url: str, number: int, headers: Mapping[str, str]
) -> tuple[Any, dict[str, str]]:
    """An attempt's span under ``request_span``, and ``headers`` plus its ``traceparent``."""
    parent = _trace.set_span_in_context(request_span)
    span = _tracer.start_span(
        "tgispy.attempt",
        context=parent,
        kind=_trace.SpanKind.CLIENT,
        attributes={"server.address": url, "tgispy.attempt": number},
    )
    carrier = dict(headers)
    _propagator.inject(carrier, context=_trace.set_span_in_context(span))
    return span, carrier


def end(span: Any, error: BaseException | None = None) -> None:
    """End ``span``, marked as failed with ``error`` when one is given."""
    if error is not None:
        span.record_exception(error)
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(error).__name__))
    span.end()
