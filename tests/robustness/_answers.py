"""The checks every answer of `tgispy serve` must pass, whatever the request.

An answer of `tgispy serve` is acceptable when it is what TGI itself would send: a 2xx, or an
error with TGI's JSON body ``{"error", "error_type"}`` and the status that ``error_type`` has in
TGI's router, or one of axum's plain-text rejections (400/413/415/422) with its exact text.
Never a 5xx, never an aiohttp default page, never a hang.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: TGI's docs/openapi.json at v3.3.7, vendored once for every test package.
OPENAPI = Path(__file__).resolve().parent.parent / "tgi" / "data" / "openapi.json"

#: The status TGI's router gives each ``error_type`` (protocol_facts.json: infer_errors,
#: other_errors) plus tgispy serve's own ``unavailable`` (model not loaded).
STATUS_BY_ERROR_TYPE: Mapping[str, int] = {
    "validation": 422,
    "template_error": 422,
    "missing_template_variable": 422,
    "tool_error": 422,
    "suffix not supported": 422,
    "batch size exceeded": 422,
    "generation": 424,
    "overloaded": 429,
    "healthcheck": 503,
    "unavailable": 503,
}

#: axum's plain-text rejections: status -> the text the body starts with.
PLAIN_REJECTIONS: Mapping[int, str] = {
    400: "Failed to parse the request body as JSON: ",
    413: "Failed to buffer the request body: length limit exceeded",
    415: "Expected request with `Content-Type: application/json`",
    422: "Failed to deserialize the JSON body into the target type: ",
}

#: Routes whose body may ask for a stream (``stream: true``); /generate_stream always streams.
_STREAMABLE = frozenset({"/", "/v1/chat/completions", "/v1/completions"})
_OPENAI = frozenset({"/v1/chat/completions", "/v1/completions"})


def check_error(status: int, content_type: str, body: bytes) -> str:
    """Assert an error answer is TGI-shaped with the right status; return its kind.

    The kind is the ``error_type`` of a JSON error, or ``plain-<status>`` for axum's rejections.
    """
    assert 400 <= status < 500, f"status {status}: {body[:300]!r}"
    if content_type == "application/json":
        payload = json.loads(body)
        assert isinstance(payload, dict), payload
        assert set(payload) == {"error", "error_type"}, payload
        assert isinstance(payload["error"], str) and payload["error"], payload
        error_type = payload["error_type"]
        assert STATUS_BY_ERROR_TYPE.get(error_type) == status, (status, payload)
        return str(error_type)
    assert content_type == "text/plain", (status, content_type, body[:300])
    text = body.decode("utf-8")
    assert status in PLAIN_REJECTIONS, (status, text[:300])
    assert text.startswith(PLAIN_REJECTIONS[status]), (status, text[:300])
    return f"plain-{status}"


def _check_sse_error(path: str, event: Mapping[str, Any]) -> None:
    if path in _OPENAI:
        # TGI >= 2.4.1 on the OpenAI routes: {"error": {"message", "http_status_code": 422}}
        error = event["error"]
        assert isinstance(error, dict), event
        assert isinstance(error["message"], str) and error["message"], event
        assert error["http_status_code"] == 422, event
    else:
        assert set(event) == {"error", "error_type"}, event
        assert event["error_type"] in STATUS_BY_ERROR_TYPE, event


def check_stream(path: str, body: bytes) -> list[Any]:
    """Assert an SSE body is well formed (TGI >= 2.1 framing); return its decoded events."""
    text = body.decode("utf-8")
    assert text.endswith("\n\n"), text[-200:]
    events: list[Any] = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block[:200]
        payload = block[len("data: ") :]
        if payload == "[DONE]":
            assert path in _OPENAI, path
            events.append(payload)
            continue
        event = json.loads(payload)
        assert isinstance(event, dict), event
        if "error" in event:
            _check_sse_error(path, event)
        events.append(event)
    assert events, "an empty stream"
    if path in _OPENAI:
        assert events[-1] == "[DONE]", events[-3:]
    else:
        last = events[-1]
        assert "error" in last or last.get("generated_text") is not None, last
    return events


def is_stream_request(path: str, body: Any) -> bool:
    """Whether a request to ``path`` with JSON ``body`` asks for a stream."""
    if path == "/generate_stream":
        return True
    return path in _STREAMABLE and isinstance(body, dict) and body.get("stream") is True


def check_answer(path: str, status: int, content_type: str, body: bytes) -> str:
    """Assert one answer is acceptable (see the module docstring); return a short kind."""
    assert status < 500, f"{path}: a {status}: {body[:300]!r}"
    if status >= 400:
        return check_error(status, content_type, body)
    assert 200 <= status < 300, (path, status)
    if content_type == "text/event-stream":
        check_stream(path, body)
        return "stream"
    return "ok"
