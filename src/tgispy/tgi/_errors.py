"""Map TGI error responses and error events onto tgispy's error tree (pure, I/O-free).

TGI reports errors in several shapes over its history:

* JSON ``{"error": str, "error_type": str}`` with the HTTP status (every version), also sent as an
  SSE event by ``/generate_stream`` and, before 2.4.0, by the OpenAI routes;
* ``{"error": {"message": str, "http_status_code": 422}}`` as an SSE event on the OpenAI routes
  since 2.4.1, where the status is 422 whatever the cause and there is no ``error_type``;
* axum's plain-text rejections (400 / 413 / 415 / 422) and empty bodies (401), or a proxy's HTML.

When the server gives no ``error_type`` it is inferred from TGI's fixed message texts, so an
overload reported as "422" in a 2.4.1 stream still becomes a retryable :class:`OverloadedError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from tgispy.errors import (
    ContextWindowExceededError,
    GenerationError,
    IncompleteGenerationError,
    MalformedResponseError,
    OverloadedError,
    ServerError,
    TGIError,
    UnavailableError,
    ValidationError,
)

__all__ = [
    "error_from_payload",
    "error_from_response",
    "header_value",
    "parse_retry_after",
    "render_json",
]

#: Longest message we keep from a body; a proxy's HTML error page is not a message.
MAX_MESSAGE_CHARS = 500

_CLASS_BY_TYPE: Mapping[str, type[TGIError]] = {
    "validation": ValidationError,
    "template_error": ValidationError,
    "missing_template_variable": ValidationError,
    "tool_error": ValidationError,
    "suffix not supported": ValidationError,
    "batch size exceeded": ValidationError,
    "Input validation error": ValidationError,  # /vertex's free-text error_type
    "generation": GenerationError,
    "overloaded": OverloadedError,
    "incomplete_generation": IncompleteGenerationError,
    "incomplete_generation_stream": IncompleteGenerationError,
    "healthcheck": UnavailableError,
    "stream_serialization_error": ServerError,
}

_CLASS_BY_STATUS: Mapping[int, type[TGIError]] = {
    422: ValidationError,
    424: GenerationError,
    429: OverloadedError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}

_STATUS_BY_TYPE: Mapping[str, int] = {
    "validation": 422,
    "template_error": 422,
    "missing_template_variable": 422,
    "tool_error": 422,
    "generation": 424,
    "overloaded": 429,
    "incomplete_generation": 500,
    "incomplete_generation_stream": 500,
    "stream_serialization_error": 500,
}

# TGI's fixed messages (router/src/infer/mod.rs), for payloads that carry no error_type.
_TYPE_BY_MESSAGE: Mapping[str, str] = {
    "Model is overloaded": "overloaded",
    "Incomplete generation": "incomplete_generation",
    "Incomplete generation stream": "incomplete_generation_stream",
    "Stream event serialization error": "stream_serialization_error",
}
_TYPE_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("Input validation error: ", "validation"),
    ("Request failed during generation: ", "generation"),
    ("Template error: ", "template_error"),
    ("Missing template vatiable: ", "missing_template_variable"),  # sic, as TGI spells it
    ("Tool error: ", "tool_error"),
)

# The validation messages that mean "prompt + max_new_tokens do not fit the model's window".
_CONTEXT_WINDOW_MARKERS = (
    "`inputs` tokens + `max_new_tokens` must be <=",
    "`inputs` must have less than",
    "maximum context length",
)


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts and on multidicts.

    Example:
        >>> header_value({"Retry-After": "3"}, "retry-after")
        '3'
    """
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Args:
        value: the header value.
        now: the current UNIX time (defaults to :func:`time.time`), for HTTP dates.

    Returns:
        A non-negative number of seconds, or ``None`` when the value is absent or unreadable.

    Example:
        >>> parse_retry_after("2")
        2.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
        10.0
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds != float("inf") else None
    from email.utils import parsedate_to_datetime  # rare path; email.utils costs ~5 ms to import

    try:
        when = parsedate_to_datetime(value)
    # OverflowError: fields too large for a C int ("21 Oct 1 0:2999...9"), found by fuzz/
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is read the same way
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _infer_type(message: str) -> str | None:
    found = _TYPE_BY_MESSAGE.get(message)
    if found is not None:
        return found
    for prefix, error_type in _TYPE_BY_PREFIX:
        if message.startswith(prefix):
            return error_type
    return None


def _error_class(status: int | None, error_type: str | None, message: str) -> type[TGIError]:
    cls = _CLASS_BY_TYPE.get(error_type) if error_type else None
    if cls is None:
        cls = _CLASS_BY_STATUS.get(status, ServerError) if status is not None else ServerError
    if cls is ValidationError and any(m in message for m in _CONTEXT_WINDOW_MARKERS):
        return ContextWindowExceededError
    return cls


def render_json(value: Any) -> str:
    """``value`` as JSON text for an error message; never raises (a value nested too deep for
    :func:`json.dumps` is named by its type)."""
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__} nested too deep to show>"


def _clip(message: str) -> str:
    message = message.strip()
    if len(message) > MAX_MESSAGE_CHARS:
        return message[:MAX_MESSAGE_CHARS] + f"... [{len(message) - MAX_MESSAGE_CHARS} more chars]"
    return message


def _unpack(payload: Mapping[str, Any]) -> tuple[str | None, str | None, int | None]:
    """``(message, error_type, status)`` from any of TGI's error payload shapes."""
    error = payload.get("error")
    error_type = payload.get("error_type")
    status: Any = None
    if isinstance(error, Mapping):
        message = error.get("message")
        error_type = error_type or error.get("error_type") or error.get("type")
        status = error.get("http_status_code", error.get("code"))
    else:
        message = error
    if status is None:
        status = payload.get("http_status_code")
    return (
        message if isinstance(message, str) else None,
        error_type if isinstance(error_type, str) and error_type else None,
        status if isinstance(status, int) and not isinstance(status, bool) else None,
    )


def _build(
    message: str,
    *,
    status: int | None,
    error_type: str | None,
    replica: str | None,
    retry_after: float | None = None,
) -> TGIError:
    if error_type is None:
        error_type = _infer_type(message)
    cls = _error_class(status, error_type, message)
    return cls(
        _clip(message),
        status=status,
        error_type=error_type,
        replica=replica,
        retry_after=retry_after,
    )


def error_from_payload(
    payload: Mapping[str, Any], *, status: int | None = None, replica: str | None = None
) -> TGIError:
    """The error for a decoded error payload, typically an SSE error event.

    Accepts ``{"error": str, "error_type": str}`` and ``{"error": {"message": str,
    "http_status_code": int}}`` (plus OpenAI's ``{"error": {"message", "type"}}``). When ``status``
    is not given it is taken from the payload, or from the ``error_type``'s usual status.

    Example:
        >>> err = error_from_payload({"error": "Model is overloaded", "error_type": "overloaded"})
        >>> type(err).__name__, err.status, err.retryable
        ('OverloadedError', 429, True)
    """
    if not isinstance(payload, Mapping):
        return MalformedResponseError(
            f"error event must be a JSON object, got {type(payload).__name__}", replica=replica
        )
    message, error_type, payload_status = _unpack(payload)
    if message is None:
        return MalformedResponseError(
            f"error event without a message: {_clip(render_json(payload))}",
            status=status,
            replica=replica,
        )
    if status is None:
        status = payload_status
    if error_type is None:
        error_type = _infer_type(message)
    if status is None and error_type is not None:
        status = _STATUS_BY_TYPE.get(error_type)
    return _build(message, status=status, error_type=error_type, replica=replica)


def error_from_response(
    status: int,
    body: bytes | str,
    *,
    replica: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> TGIError:
    """The error for a non-2xx HTTP response.

    Reads TGI's JSON error body, axum's plain-text rejections, empty bodies and proxies' pages
    alike; the class follows ``error_type`` first, then the status (422 validation, 424
    generation, 429 overloaded, 502/503/504 unavailable, anything else :class:`ServerError`).
    ``retry_after`` comes from a ``Retry-After`` header. Only the response is read: request
    headers (and so credentials) can never reach the message.

    Example:
        >>> err = error_from_response(422, b'{"error":"Input validation error: `top_p` must be '
        ...     b'> 0.0 and < 1.0","error_type":"validation"}', replica="http://a:80")
        >>> type(err).__name__, err.status, err.replica
        ('ValidationError', 422, 'http://a:80')
    """
    retry_after = parse_retry_after(header_value(headers, "retry-after"))
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    message: str | None = None
    error_type: str | None = None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            decoded = json.loads(stripped)
        except (ValueError, RecursionError):  # a body nested too deep is no TGI error either
            decoded = None
        if isinstance(decoded, Mapping):
            message, error_type, _ = _unpack(decoded)
    if message is None:
        message = stripped or f"HTTP {status} with an empty body"
        if status in (401, 403) and not stripped:
            message += " (the server wants credentials: check the api_key / Authorization header)"
    return _build(
        message, status=status, error_type=error_type, replica=replica, retry_after=retry_after
    )
