"""Whose fault was a failed example: the program's (a wrong answer) or the infrastructure's.

A **program error** is something the program or its inputs caused: a completion that does not
parse, an exception in user code, a request the server rejects for this input (422: too long,
invalid parameters; 424: the model failed on it). DSPy 2.4 scores these 0 and so do we.

An **infrastructure error** says nothing about the program: no replica answered, a timeout, a
connection refused or reset, 5xx (or 429) after the router's retries. Running the example again
later may well succeed, so reports show these apart, ``--resume`` runs them again and
``Evaluate(retry_infra_failures=N)`` retries them at the end.

Pure: looks only at the exception (and the exceptions it was raised ``from``).

Example:
    >>> from tgispy.errors import ConnectError, ParseError
    >>> error_kind(ConnectError("refused")), error_kind(ParseError("no answer field"))
    ('infra', 'program')
"""

from __future__ import annotations

from typing import Final, Literal

from tgispy.errors import GenerationError, ServerError, TGIError, ValidationError

__all__ = ["INFRA", "PROGRAM", "ErrorKind", "error_kind", "is_infra_error"]

ErrorKind = Literal["program", "infra"]

PROGRAM: Final = "program"
INFRA: Final = "infra"

#: 4xx statuses that are the fleet's problem, not the request's (auth, routing, rate limits)
_INFRA_4XX: Final = frozenset({401, 403, 404, 408, 429})
#: how many ``raise ... from`` links are followed (a cycle or a very long chain stops here)
_MAX_CHAIN: Final = 16


def error_kind(exc: BaseException) -> ErrorKind:
    """``"infra"`` when ``exc`` (or an error it was raised from) is an infrastructure failure.

    Following ``__cause__`` matters for programs that wrap errors: a user module that catches a
    :class:`~tgispy.errors.NoHealthyReplicaError` and raises ``RuntimeError(...) from exc`` still
    failed because no replica answered.

    Example:
        >>> from tgispy.errors import AllReplicasFailedError
        >>> try:
        ...     try:
        ...         raise AllReplicasFailedError("no replica answered")
        ...     except AllReplicasFailedError as exc:
        ...         raise RuntimeError("retriever failed") from exc
        ... except RuntimeError as wrapped:
        ...     error_kind(wrapped)
        'infra'
    """
    current: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if current is None:
            break
        if _is_infra(current):
            return INFRA
        current = current.__cause__
    return PROGRAM


def is_infra_error(exc: BaseException) -> bool:
    """Whether :func:`error_kind` says ``"infra"``."""
    return error_kind(exc) == INFRA


def _is_infra(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return bool(exc.exceptions) and all(is_infra_error(e) for e in exc.exceptions)
    if isinstance(exc, ValidationError | GenerationError):
        return False  # 422 / 424: this input, not the fleet
    if isinstance(exc, ServerError):
        status = exc.status
        return status is None or status >= 500 or status in _INFRA_4XX
    if isinstance(exc, TGIError):
        # connect / timeout / transport, 429 / 5xx after retries, malformed bodies, no replica
        return True
    # Programs that talk to other services (a retriever, a tool) fail the same way.
    return isinstance(exc, TimeoutError | ConnectionError)
