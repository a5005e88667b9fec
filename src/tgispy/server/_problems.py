"""The server's error answers, with TGI's exact status codes, messages and bodies.

:class:`Problem` is internal control flow of the HTTP front (raised by validation, caught by the
handlers and turned into a response or an SSE error event); clients see TGI's wire format, which
tgispy's client maps onto :mod:`tgispy.errors`.
"""

from __future__ import annotations

import json

__all__ = [
    "Problem",
    "bad_json",
    "body_timeout",
    "deserialize",
    "generation",
    "incomplete",
    "incomplete_stream",
    "overloaded",
    "payload_too_large",
    "template_error",
    "tool_error",
    "unavailable",
    "unsupported_media_type",
    "validation",
]


class Problem(Exception):
    """An error answer: HTTP ``status`` with TGI's ``{"error", "error_type"}`` JSON body.

    ``plain=True`` marks axum's plain-text rejections (deserialisation, payload size, media type),
    whose body is ``message`` itself.
    """

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str,
        *,
        plain: bool = False,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.plain = plain

    def body(self) -> bytes:
        """The response body."""
        if self.plain:
            return self.message.encode()
        return json.dumps(
            {"error": self.message, "error_type": self.error_type},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @property
    def content_type(self) -> str:
        """The response's ``Content-Type``."""
        return "text/plain; charset=utf-8" if self.plain else "application/json"


def validation(message: str) -> Problem:
    """422 ``validation``: ``Input validation error: <message>``."""
    return Problem(422, f"Input validation error: {message}", "validation")


def generation(message: str) -> Problem:
    """424 ``generation``: the engine failed while generating."""
    return Problem(424, f"Request failed during generation: {message}", "generation")


def overloaded() -> Problem:
    """429 ``overloaded``: more than ``max_concurrent_requests`` in flight."""
    return Problem(429, "Model is overloaded", "overloaded")


def incomplete() -> Problem:
    """500 ``incomplete_generation``: the engine stopped without finishing."""
    return Problem(500, "Incomplete generation", "incomplete_generation")


def incomplete_stream() -> Problem:
    """500 ``incomplete_generation_stream``: a stream ended without its final event."""
    return Problem(500, "Incomplete generation stream", "incomplete_generation_stream")


def template_error(message: str) -> Problem:
    """422 ``template_error``: the chat template could not render the messages."""
    return Problem(422, f"Template error: {message}", "template_error")


def tool_error(message: str) -> Problem:
    """422 ``tool_error``."""
    return Problem(422, f"Tool error: {message}", "tool_error")


def unavailable(message: str) -> Problem:
    """503 ``unavailable``: the model is not loaded (or failed to load)."""
    return Problem(503, message, "unavailable")


def deserialize(message: str) -> Problem:
    """axum's 422 plain-text answer for a JSON body that does not fit the request type."""
    return Problem(
        422,
        f"Failed to deserialize the JSON body into the target type: {message}",
        "deserialize",
        plain=True,
    )


def bad_json(message: str) -> Problem:
    """axum's 400 plain-text answer for a body that is not JSON."""
    return Problem(
        400, f"Failed to parse the request body as JSON: {message}", "bad_json", plain=True
    )


def unsupported_media_type() -> Problem:
    """axum's 415 plain-text answer for a body without ``Content-Type: application/json``."""
    return Problem(
        415, "Expected request with `Content-Type: application/json`", "media_type", plain=True
    )


def payload_too_large() -> Problem:
    """axum's 413 plain-text answer for a body over ``--payload-limit``."""
    return Problem(
        413, "Failed to buffer the request body: length limit exceeded", "payload", plain=True
    )


def body_timeout(seconds: float) -> Problem:
    """408, plain text: the body did not arrive within ``--body-timeout`` (then the connection
    is closed). TGI (hyper) just drops such a connection; a short answer tells an honest slow
    client why."""
    return Problem(
        408,
        f"Failed to buffer the request body: not received within {seconds:g} seconds",
        "payload",
        plain=True,
    )
