"""Error bodies of the OpenAI-compatible engines and Ollama onto tgispy's error tree (pure).

Five shapes (see ``/work/shared/engines/README.md``, "error body"):

* vLLM, llama.cpp, OpenAI, Ollama ``/v1``: ``{"error": {"message", "type", "code", ...}}``;
* SGLang (OpenAI routes, non-streaming): flat ``{"object": "error", "message", "type", "code"}``;
* Ollama native and vLLM's 401: ``{"error": "<message>"}``;
* plain text or HTML from a proxy, or an empty body.

The class follows the status: 400/422 validation (or context window exceeded, recognised by each
engine's message), 429 overloaded, 502/503/504 unavailable (Ollama's "server busy" 503 is an
overload), anything else :class:`~tgispy.errors.ServerError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tgispy.errors import (
    ContextWindowExceededError,
    MalformedResponseError,
    OverloadedError,
    ServerError,
    TGIError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi._errors import header_value, parse_retry_after, render_json

__all__ = ["engine_error", "error_from_payload", "unpack_error"]

_MAX_MESSAGE_CHARS = 500
_OVERLOAD_MARKERS = ("server busy", "queue is full", "currently busy")


def _clip(message: str) -> str:
    message = message.strip()
    if len(message) > _MAX_MESSAGE_CHARS:
        return (
            message[:_MAX_MESSAGE_CHARS] + f"... [{len(message) - _MAX_MESSAGE_CHARS} more chars]"
        )
    return message


def unpack_error(payload: Any) -> tuple[str | None, str | None, int | None]:
    """``(message, type, code)`` from any of the engines' JSON error shapes.

    Example:
        >>> unpack_error({"object": "error", "message": "bad", "type": "BadRequest", "code": 400})
        ('bad', 'BadRequest', 400)
        >>> unpack_error({"error": "model 'x' not found"})
        ("model 'x' not found", None, None)
    """
    if not isinstance(payload, Mapping):
        return None, None, None
    inner: Any = payload.get("error")
    if isinstance(inner, Mapping):
        source: Mapping[str, Any] = inner
        message: Any = inner.get("message")
    elif isinstance(inner, str):
        return inner, None, None
    else:
        source = payload
        message = payload.get("message") if payload.get("object") == "error" else None
    kind = source.get("type")
    code = source.get("code")
    return (
        message if isinstance(message, str) else None,
        str(kind) if isinstance(kind, (str, int)) and kind != "" else None,
        code if isinstance(code, int) and not isinstance(code, bool) else None,
    )


def _class_for(
    status: int | None, message: str, error_type: str | None, markers: Sequence[str]
) -> type[TGIError]:
    lowered = message.lower()
    if error_type == "exceed_context_size_error" or any(m.lower() in lowered for m in markers):
        return ContextWindowExceededError
    if status in (400, 422):
        return ValidationError
    if status == 429 or any(m in lowered for m in _OVERLOAD_MARKERS):
        return OverloadedError
    if status in (502, 503, 504):
        return UnavailableError
    return ServerError


def _hint(engine: str, status: int | None, message: str) -> str:
    if status in (401, 403):
        return message + " (the server wants credentials: pass api_key= or an Authorization header)"
    if status == 404 and "model" in message.lower():
        return message + f" (pass a model the {engine} server serves; GET /v1/models lists them)"
    if status == 404:
        return message + f" (is this a {engine} server? check the engine= and url/api_base)"
    return message


def error_from_payload(
    engine: str,
    payload: Any,
    *,
    status: int | None = None,
    replica: str | None = None,
    markers: Sequence[str] = (),
) -> TGIError:
    """The error for a decoded error payload (a response body or a stream's error event)."""
    message, error_type, code = unpack_error(payload)
    if message is None:
        return MalformedResponseError(
            f"{engine} sent an error without a message: {_clip(render_json(payload))}",
            status=status,
            replica=replica,
        )
    if status is None or (status == 200 and code is not None):
        status = code  # an error event inside a 200 stream carries its own code
    cls = _class_for(status, message, error_type, markers)
    return cls(
        _clip(_hint(engine, status, message)), status=status, error_type=error_type, replica=replica
    )


def engine_error(
    engine: str,
    status: int,
    body: bytes | str,
    *,
    replica: str | None = None,
    headers: Mapping[str, str] | None = None,
    markers: Sequence[str] = (),
) -> TGIError:
    """The error for a non-2xx response of ``engine`` (any of the shapes above).

    Example:
        >>> err = engine_error("vllm", 404, b'{"error":{"message":"The model `x` does not exist.",'
        ...                    b'"type":"NotFoundError","param":"model","code":404}}')
        >>> type(err).__name__, err.status, err.error_type
        ('ServerError', 404, 'NotFoundError')
    """
    import json

    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    stripped = text.strip()
    payload: Any = None
    if stripped.startswith("{"):
        try:
            payload = json.loads(stripped)
        except (ValueError, RecursionError):
            payload = None
    message, error_type, _ = unpack_error(payload)
    if message is None:
        message = stripped or f"HTTP {status} with an empty body"
    cls = _class_for(status, message, error_type, markers)
    return cls(
        _clip(_hint(engine, status, message)),
        status=status,
        error_type=error_type,
        replica=replica,
        retry_after=parse_retry_after(header_value(headers, "retry-after")),
    )
