"""One error tree for tgispy.

Every error raised by tgispy derives from :class:`TgispyError`. Errors that come from talking to a
TGI server derive from :class:`TGIError` and carry the data needed to act on them: the HTTP status,
TGI's ``error_type``, the replica that produced it and a ``Retry-After`` hint. All errors pickle
cleanly (they cross thread and process boundaries in parallel evaluation).

Example:
    >>> from tgispy.errors import OverloadedError
    >>> err = OverloadedError("Model is overloaded", status=429, replica="http://127.0.0.1:8080")
    >>> err.retryable
    True
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AllReplicasFailedError",
    "ConfigError",
    "ConnectError",
    "ContextWindowExceededError",
    "GenerationError",
    "IncompleteGenerationError",
    "InvalidRequestError",
    "MalformedResponseError",
    "NoHealthyReplicaError",
    "OverloadedError",
    "ParseError",
    "ServerError",
    "TGIError",
    "TGITimeoutError",
    "TgispyError",
    "TransportError",
    "UnavailableError",
    "ValidationError",
]


class TgispyError(Exception):
    """Root of every error tgispy raises."""


class ConfigError(TgispyError, ValueError):
    """Bad configuration or arguments, caught before any network call. The message names the fix."""


class InvalidRequestError(ConfigError):
    """A generation request a TGI server would reject (e.g. ``top_p=1.5``), caught client-side."""


class ParseError(TgispyError, ValueError):
    """A completion could not be parsed into the signature's output fields.

    Attributes:
        completion: the raw completion text that failed to parse.
    """

    def __init__(self, message: str, *, completion: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.completion = completion

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, {"completion": self.completion}))


class TGIError(TgispyError):
    """An error from a TGI server or from the transport to it.

    Attributes:
        message: TGI's error message (or ours, for transport errors).
        status: the HTTP status code, when there was a response.
        error_type: TGI's ``error_type`` (``validation``, ``generation``, ``overloaded``, ...).
        replica: base URL of the replica that produced the error.
        retry_after: seconds the server asked us to wait, when it said so.
    """

    #: whether the router may retry the request (on another replica when one exists)
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        replica: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.replica = replica
        self.retry_after = retry_after

    def _fields(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error_type": self.error_type,
            "replica": self.replica,
            "retry_after": self.retry_after,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._fields()))

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.status is not None:
            details.append(f"status {self.status}")
        if self.error_type:
            details.append(f"error_type {self.error_type!r}")
        if self.replica:
            details.append(f"replica {self.replica}")
        if details:
            parts.append("(" + ", ".join(details) + ")")
        return " ".join(parts)


class ValidationError(TGIError):
    """HTTP 422: the server rejected the request's inputs or parameters. Never retried."""


class ContextWindowExceededError(ValidationError):
    """HTTP 422: prompt plus ``max_new_tokens`` exceed the model's context window."""


class GenerationError(TGIError):
    """HTTP 424: the model failed while generating."""


class OverloadedError(TGIError):
    """HTTP 429: the replica is at ``max_concurrent_requests``. Retryable."""

    retryable = True


class IncompleteGenerationError(TGIError):
    """HTTP 500 / stream event: the backend stopped before finishing the generation."""

    retryable = True


class UnavailableError(TGIError):
    """HTTP 502/503/504: a proxy or the server says the model is not available. Retryable."""

    retryable = True


class ServerError(TGIError):
    """Any other non-2xx response."""


class TransportError(TGIError):
    """The request did not complete at the HTTP level (connection reset, protocol error)."""

    retryable = True


class ConnectError(TransportError):
    """Could not connect to the replica. Nothing was sent, so retrying is always safe."""


class TGITimeoutError(TransportError, TimeoutError):
    """A timeout expired (connect, first byte, or the whole request deadline)."""


class MalformedResponseError(TGIError):
    """The server answered with a body that is not a valid TGI response."""

    retryable = True


class NoHealthyReplicaError(TGIError):
    """Every replica is ejected or failing; carries each replica's last error."""

    def __init__(
        self,
        message: str,
        *,
        errors: dict[str, str] | None = None,
        status: int | None = None,
        error_type: str | None = None,
        replica: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status=status, error_type=error_type, replica=replica, retry_after=retry_after
        )
        self.errors: dict[str, str] = dict(errors or {})

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "errors": self.errors}

    def __str__(self) -> str:
        base = super().__str__()
        if not self.errors:
            return base
        lines = "; ".join(f"{url}: {err}" for url, err in self.errors.items())
        return f"{base} [{lines}]"


class AllReplicasFailedError(NoHealthyReplicaError):
    """A request ran out of attempts (or of its deadline); carries the error of every attempt."""


def _rebuild(cls: type[Exception], message: str, fields: dict[str, Any]) -> Exception:
    return cls(message, **fields)
