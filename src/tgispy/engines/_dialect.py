"""The neutral request and result types every engine dialect speaks, and the ``Dialect`` protocol.

A dialect is pure: it turns a :class:`Request` into ``(path, JSON body)``, a response body into a
:class:`Result`, one stream payload into :class:`Delta` values, and an error response into an
error of :mod:`tgispy.errors`. It never does I/O; the fleet client sends what it builds.

Conventions every dialect follows, so that the program layer sees one behaviour whatever the
engine:

* ``temperature=0`` (or ``None``) is greedy decoding;
* a matched stop string is **cut** from the text (vLLM, SGLang, llama.cpp and Ollama cut it on
  the server; stop strings an engine cannot take are applied here, by :func:`apply_stops`), and
  the match is reported in :attr:`Choice.matched_stop` when known;
* finish reasons are ``"stop"`` (end of sequence or a stop string), ``"length"``, or the engine's
  own word for anything else (``"abort"``, ``"tool_calls"``);
* usage is ``{"prompt_tokens", "completion_tokens", "total_tokens"}`` plus ``"cached_tokens"``
  when the engine reports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tgispy.errors import ConfigError, MalformedResponseError, TGIError

__all__ = [
    "Choice",
    "Constraint",
    "ConstraintKind",
    "Delta",
    "Dialect",
    "Limits",
    "Request",
    "Result",
    "StreamFormat",
    "apply_stops",
    "decode_json",
    "unsupported_constraint",
]

ConstraintKind = Literal["json", "regex", "grammar", "choice"]
StreamFormat = Literal["sse", "ndjson"]


@dataclass(frozen=True)
class Constraint:
    """An output constraint: a JSON schema, a regex, a grammar or a list of choices.

    Attributes:
        kind: ``"json"`` (``value`` is a JSON-schema dict), ``"regex"`` (a pattern string),
            ``"grammar"`` (GBNF / EBNF text) or ``"choice"`` (a list of strings).
        value: the constraint itself.

    Example:
        >>> Constraint("json", {"type": "object"}).kind
        'json'
    """

    kind: ConstraintKind
    value: Any


@dataclass(frozen=True)
class Request:
    """One generation request, engine-neutral.

    Exactly one of ``prompt`` (text completion) and ``messages`` (chat) is set. ``None`` means
    "not given" for every sampling field; the dialect decides what the engine then needs.

    Example:
        >>> Request(model="m", prompt="2+2=", max_tokens=4, temperature=0.0).is_chat
        False
    """

    model: str | None = None
    prompt: str | None = None
    messages: tuple[Mapping[str, Any], ...] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    constraint: Constraint | None = None
    stream: bool = False
    #: engine-specific keys sent as they are (``num_ctx`` for Ollama, ``min_p``, ...)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ConfigError("a request needs exactly one of prompt= and messages=")
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ConfigError(f"n must be a positive integer, got {self.n!r}")

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    @property
    def greedy(self) -> bool:
        """Whether this asks for greedy decoding (temperature 0 or not given)."""
        return self.temperature is None or self.temperature <= 0


@dataclass(frozen=True)
class Choice:
    """One generated sequence in the neutral shape (stop string already cut)."""

    text: str
    finish_reason: str | None = None
    index: int = 0
    matched_stop: str | None = None


@dataclass(frozen=True)
class Result:
    """A whole response: its choices in index order, usage, and the model that answered."""

    choices: tuple[Choice, ...]
    usage: Mapping[str, int] | None = None
    model: str | None = None


@dataclass(frozen=True)
class Delta:
    """One piece of a stream: new text for choice ``index``, and how the choice ended.

    ``done`` marks the end of the whole stream (``[DONE]``, or Ollama's ``done: true``).
    """

    index: int = 0
    text: str = ""
    finish_reason: str | None = None
    usage: Mapping[str, int] | None = None
    done: bool = False


@dataclass(frozen=True)
class Limits:
    """What discovery learned about a replica.

    Attributes:
        models: the model ids the server serves (empty when unknown).
        context_length: tokens per sequence (prompt + completion), when known.
        max_n: the most choices one request may ask for (llama.cpp: its slot count).
        version: the engine's version or build string.
        extra: anything else worth keeping (capabilities, ...).
    """

    models: tuple[str, ...] = ()
    context_length: int | None = None
    max_n: int | None = None
    version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Dialect(Protocol):
    """What the fleet client needs from an engine dialect (every method is pure).

    Attributes:
        name: the engine (``"openai"``, ``"vllm"``, ``"sglang"``, ``"llamacpp"``, ``"ollama"``).
        stream_format: ``"sse"`` or ``"ndjson"`` (Ollama's native API).
        health_path: the cheap GET that says the replica is up.
        limits_path: the GET that :meth:`parse_limits` reads (``None``: no discovery).
        constraint_kinds: the :class:`Constraint` kinds the engine can enforce.
    """

    @property
    def name(self) -> str: ...
    @property
    def stream_format(self) -> StreamFormat: ...
    @property
    def health_path(self) -> str: ...
    @property
    def limits_path(self) -> str | None: ...
    @property
    def constraint_kinds(self) -> frozenset[str]: ...

    def server_n(self, request: Request, limits: Limits | None) -> int:
        """How many choices one request may carry (``1``: fan out ``n`` requests)."""
        ...

    def build(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The path (under the replica's base URL) and JSON body for ``request``."""
        ...

    def parse(self, request: Request, body: bytes | str) -> Result:
        """A complete (non-streaming) response body as a :class:`Result`."""
        ...

    def parse_event(self, request: Request, data: str) -> list[Delta]:
        """One stream payload (an SSE ``data`` field or an NDJSON line) as deltas."""
        ...

    def error(
        self,
        status: int,
        body: bytes | str,
        *,
        replica: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TGIError:
        """The error for a non-2xx response."""
        ...

    def parse_limits(self, body: bytes | str) -> Limits:
        """The body of ``GET limits_path`` as :class:`Limits`."""
        ...

    def check_model(self, model: str | None, limits: Limits | None) -> str | None:
        """Why the server would reject ``model`` (the fix named), or ``None``."""
        ...


# ---- shared pure helpers -----------------------------------------------------------------------
def decode_json(body: bytes | str, *, what: str = "response") -> Any:
    """``body`` parsed as JSON, or :class:`MalformedResponseError` naming what it was.

    Example:
        >>> decode_json(b'{"a": 1}')
        {'a': 1}
    """
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
        raise MalformedResponseError(f"the {what} is not JSON: {text[:200]!r}") from exc


def apply_stops(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """Cut ``text`` at the earliest occurrence of any stop string; return it and the match.

    The engines that cut stop strings stop at the first match, so this is idempotent on their
    output; it enforces stop strings the engine was not sent (beyond its limit) or ignored.

    Example:
        >>> apply_stops("Answer: 4\\n\\nQuestion: 5", ["\\n\\n", "Question:"])
        ('Answer: 4', '\\n\\n')
        >>> apply_stops("no stop here", ["---"])
        ('no stop here', None)
    """
    best: tuple[int, int, str] | None = None
    for stop in stops:
        if not stop:
            continue
        pos = text.find(stop)
        # earliest match wins; at one position, the longest stop string
        if pos >= 0 and (best is None or (pos, -len(stop)) < (best[0], -best[1])):
            best = (pos, len(stop), stop)
    if best is None:
        return text, None
    return text[: best[0]], best[2]


def unsupported_constraint(
    engine: str, constraint: Constraint, kinds: frozenset[str]
) -> ConfigError:
    """The error for a constraint an engine cannot enforce, naming what it can do."""
    can = ", ".join(sorted(kinds)) or "no constraints"
    return ConfigError(
        f"{engine} cannot constrain output with a {constraint.kind!r} constraint (it supports: "
        f"{can}); drop it, or pass a JSON schema, or let the program parse unconstrained output"
    )
