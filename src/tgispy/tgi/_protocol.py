"""TGI's HTTP protocol as data: every fact tgispy relies on, kept once (pure, no I/O).

The tables below are what the rest of tgispy derives its lists from: the client's request
building (:mod:`tgispy.tgi._request`) and ``/info`` reading (:mod:`tgispy.tgi._info`), the
embedded server's deserialisation, validation limits and ``/info`` (:mod:`tgispy.server`), the
DSPy engine's parameter lists and the test doubles' ``/info`` (:mod:`tgispy.testing`). They hold
facts, never messages: the server words its errors as TGI does, the client names the fix.

Sources, all from huggingface/text-generation-inference at commit ``db931fcf`` (v3.3.7 + 1,
vendored in ``tests/tgi/data/``, see its ``README.md``):

* ``openapi.json`` (``docs/openapi.json``) and the same file at v0.9.4, v1.4.5 and v2.4.1: names,
  JSON types and nullability of ``GenerateParameters``, ``ChatRequest``, ``CompletionRequest``
  and ``Info`` (``tests/tgi/test_protocol.py`` checks the tables against them);
* ``protocol_facts.json``: validation rules (``generate_parameters.fields``,
  ``validation_messages``), ``since`` versions, the OpenAI routes' mapping onto generate
  parameters (``openai_route_mapping``), ``/info`` fields by version and launcher defaults
  (``info``).

Example:
    >>> PARAMETERS["top_p"].violates(1.0), PARAMETERS["top_p"].neutral
    (True, 1.0)
    >>> sorted(route_fields("completions"))[:3]
    ['frequency_penalty', 'max_tokens', 'model']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

__all__ = [
    "BASE",
    "CHAT_FIELDS",
    "COMPLETION_FIELDS",
    "ENDPOINTS",
    "FEATURE_SINCE",
    "GENERATE_PARAMETERS",
    "GRAMMAR_TYPES",
    "INFO_FIELDS",
    "LAUNCHER",
    "PARAMETERS",
    "REQUIRED",
    "Bound",
    "Endpoint",
    "Field",
    "GrammarType",
    "InfoField",
    "Launcher",
    "Route",
    "Version",
    "info_document",
    "names_of",
    "route_fields",
]

Version = tuple[int, int, int]
#: "every release": the fields TGI has had since its first public versions (0.x).
BASE: Final[Version] = (0, 0, 0)

#: The generation routes: ``generate`` is ``POST /generate`` (and ``POST /`` with
#: ``stream=false``, ``/invocations``), ``generate_stream`` is ``POST /generate_stream``,
#: ``chat`` ``POST /v1/chat/completions``, ``completions`` ``POST /v1/completions``.
Route = Literal["generate", "generate_stream", "chat", "completions"]
JsonType = Literal["boolean", "integer", "number", "string", "array", "object"]
#: How TGI's router deserialises a field (its serde type): the integer widths decide which
#: values are a plain-text 422 before validation; ``strings`` is ``Vec<String>``; ``any`` is
#: read and not checked; the last three are read by their own code.
Wire = Literal[
    "bool",
    "u32",
    "i32",
    "u64",
    "usize",
    "f32",
    "string",
    "strings",
    "any",
    "map",
    "grammar",
    "messages",
    "prompt",
]

_GEN: Final[frozenset[Route]] = frozenset({"generate", "generate_stream"})
_ALL: Final[frozenset[Route]] = frozenset({"generate", "generate_stream", "chat", "completions"})
_FACTS: Final = "protocol_facts.json generate_parameters.fields"


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a range: ``value``, and whether ``value`` itself is outside (exclusive)."""

    value: float
    exclusive: bool = False


@dataclass(frozen=True, slots=True)
class Field:
    """One request field of a TGI route.

    Attributes:
        name: the JSON key.
        json_type: the OpenAPI ``type`` (``"object"`` for a ``$ref`` such as ``GrammarType``).
        wire: how TGI deserialises it (see :data:`Wire`).
        optional: ``Option<_>`` in TGI: ``null`` reads as absent.
        routes: the routes on which a client can set it (for a generate parameter: under its
            own name in ``parameters`` or through an OpenAI field, see ``sets``).
        default: its value when absent (serde's default).
        neutral: the value that means "off" (what TGI uses when it is absent).
        minimum, maximum: the range TGI's validation accepts.
        limit: the server limit (an ``/info`` field or :class:`Launcher` name) that caps it.
        since: the first TGI version that reads it; ``None`` when the facts do not say (it is
            then only known to be in the schemas that declare it).
        sets: for an OpenAI-route field, the generate parameter it is mapped onto.
        documented: ``False`` for serde aliases, which TGI's OpenAPI document does not show.
        source: where the facts come from.
    """

    name: str
    json_type: JsonType
    wire: Wire
    optional: bool
    routes: frozenset[Route] = _GEN
    default: Any = None
    neutral: float | None = None
    minimum: Bound | None = None
    maximum: Bound | None = None
    limit: str | None = None
    since: Version | None = BASE
    sets: str | None = None
    documented: bool = True
    source: str = _FACTS

    def violates(self, value: float) -> bool:
        """Whether TGI's validation refuses ``value`` for this field (its range only; NaN is
        never in range).

        Example:
            >>> PARAMETERS["frequency_penalty"].violates(-2.0)
            False
        """
        low, high = self.minimum, self.maximum
        above = low is None or (value > low.value if low.exclusive else value >= low.value)
        below = high is None or (value < high.value if high.exclusive else value <= high.value)
        return not (above and below)

    @property
    def least_int(self) -> int:
        """The smallest integer in range (``0`` when unbounded below).

        Example:
            >>> PARAMETERS["top_k"].least_int, PARAMETERS["seed"].least_int
            (1, 0)
        """
        low = self.minimum
        if low is None:
            return 0
        return int(low.value) + 1 if low.exclusive else int(low.value)


_POSITIVE: Final = Bound(0.0, exclusive=True)
_ZERO_INT: Final = Bound(0)
_POSITIVE_INT: Final = Bound(0, exclusive=True)
_PENALTY: Final = (Bound(-2.0), Bound(2.0))

#: TGI's ``GenerateParameters`` (``router/src/lib.rs``), in the order tgispy's server reads them.
#: Defaults are the server's real ones: openapi.json says ``details`` defaults to true and
#: ``max_new_tokens`` to 1024, serde's defaults are false and "what is left of max_total_tokens".
GENERATE_PARAMETERS: Final[tuple[Field, ...]] = (
    Field(
        "best_of",
        "integer",
        "usize",
        True,
        frozenset({"generate"}),
        minimum=_POSITIVE_INT,
        limit="max_best_of",
    ),
    Field(
        "decoder_input_details", "boolean", "bool", False, frozenset({"generate"}), default=False
    ),
    Field("details", "boolean", "bool", False, default=False),
    Field("do_sample", "boolean", "bool", False, default=False),
    Field(
        "frequency_penalty",
        "number",
        "f32",
        True,
        _ALL,
        neutral=0.0,
        minimum=_PENALTY[0],
        maximum=_PENALTY[1],
        since=(1, 4, 1),
    ),
    Field(
        "grammar",
        "object",
        "grammar",
        True,
        frozenset({"generate", "generate_stream", "chat"}),
        since=(1, 4, 1),
    ),
    Field(
        "max_new_tokens",
        "integer",
        "u32",
        True,
        _ALL,
        minimum=_POSITIVE_INT,
        limit="max_total_tokens",
    ),
    Field(
        "repetition_penalty",
        "number",
        "f32",
        True,
        _ALL,
        neutral=1.0,
        minimum=_POSITIVE,
    ),
    Field("return_full_text", "boolean", "bool", True),
    Field("seed", "integer", "u64", True, _ALL, minimum=_ZERO_INT),
    Field("stop", "array", "strings", False, _ALL, default=(), limit="max_stop_sequences"),
    Field("temperature", "number", "f32", True, _ALL, neutral=1.0, minimum=_POSITIVE),
    Field("top_k", "integer", "i32", True, neutral=0, minimum=_POSITIVE_INT),
    Field(
        "top_n_tokens",
        "integer",
        "u32",
        True,
        frozenset({"generate", "generate_stream", "chat"}),
        neutral=0,
        minimum=_ZERO_INT,
        limit="max_top_n_tokens",
        since=(1, 0, 3),
    ),
    Field(
        "top_p",
        "number",
        "f32",
        True,
        _ALL,
        neutral=1.0,
        minimum=_POSITIVE,
        maximum=Bound(1.0, exclusive=True),
    ),
    Field("truncate", "integer", "usize", True, minimum=_POSITIVE_INT, limit="max_input_tokens"),
    Field(
        "typical_p",
        "number",
        "f32",
        True,
        neutral=1.0,
        minimum=_POSITIVE,
        maximum=Bound(1.0, exclusive=True),
    ),
    Field("watermark", "boolean", "bool", False, default=False),
    Field("adapter_id", "string", "string", True, _ALL, since=(2, 1, 0)),
)

#: :data:`GENERATE_PARAMETERS` by name.
PARAMETERS: Final[Mapping[str, Field]] = MappingProxyType({p.name: p for p in GENERATE_PARAMETERS})

_CHAT: Final[frozenset[Route]] = frozenset({"chat"})
_COMPLETIONS: Final[frozenset[Route]] = frozenset({"completions"})
_OPENAI: Final = "protocol_facts.json openai_route_mapping; openapi.json ChatRequest"


def _chat(
    name: str,
    json_type: JsonType,
    wire: Wire,
    optional: bool = True,
    *,
    sets: str | None = None,
    default: Any = None,
    minimum: Bound | None = None,
    maximum: Bound | None = None,
    since: Version | None = None,  # the facts date the route (1.4.0), not each of its fields
    documented: bool = True,
) -> Field:
    return Field(
        name,
        json_type,
        wire,
        optional,
        _CHAT,
        default=default,
        minimum=minimum,
        maximum=maximum,
        since=since,
        sets=sets,
        documented=documented,
        source=_OPENAI,
    )


#: ``POST /v1/chat/completions``'s body (``ChatRequest``), in the order tgispy's server reads it;
#: ``sets`` names the generate parameter each field is mapped onto.
CHAT_FIELDS: Final[tuple[Field, ...]] = (
    _chat("messages", "array", "messages", False),
    _chat("model", "string", "string", sets="adapter_id"),
    _chat(
        "frequency_penalty",
        "number",
        "f32",
        sets="frequency_penalty",
        minimum=_PENALTY[0],
        maximum=_PENALTY[1],
    ),
    _chat("logit_bias", "array", "any"),  # accepted, ignored
    _chat("logprobs", "boolean", "bool"),
    _chat("top_logprobs", "integer", "u32", sets="top_n_tokens", minimum=_ZERO_INT),
    _chat("max_tokens", "integer", "u32", sets="max_new_tokens", minimum=_POSITIVE_INT),
    # serde alias of max_tokens since 3.0.2 (it wins when both are given)
    _chat(
        "max_completion_tokens",
        "integer",
        "u32",
        sets="max_new_tokens",
        minimum=_POSITIVE_INT,
        since=(3, 0, 2),
        documented=False,
    ),
    _chat("n", "integer", "u32"),  # accepted, ignored: one choice
    # repetition_penalty = presence_penalty + 2.0; the range is OpenAI's (ChatRequest's doc)
    _chat(
        "presence_penalty",
        "number",
        "f32",
        sets="repetition_penalty",
        minimum=_PENALTY[0],
        maximum=_PENALTY[1],
    ),
    _chat("stream", "boolean", "bool", False, default=False),
    _chat("seed", "integer", "u64", sets="seed", minimum=_ZERO_INT),
    _chat("temperature", "number", "f32", sets="temperature", minimum=Bound(0.0)),  # 0: greedy
    _chat(
        "top_p",
        "number",
        "f32",
        sets="top_p",
        minimum=_POSITIVE,
        maximum=Bound(1.0, exclusive=True),
    ),
    _chat("stop", "array", "strings", sets="stop"),
    _chat("tools", "array", "any", sets="grammar"),
    _chat("tool_choice", "object", "any"),
    _chat("tool_prompt", "string", "string"),
    _chat("stream_options", "object", "map", since=(2, 3, 0)),
    _chat("response_format", "object", "grammar", sets="grammar"),
)


def _completion(
    name: str,
    json_type: JsonType,
    wire: Wire,
    optional: bool = True,
    *,
    sets: str | None = None,
    default: Any = None,
    limit: str | None = None,
) -> Field:
    return Field(
        name,
        json_type,
        wire,
        optional,
        _COMPLETIONS,
        default=default,
        limit=limit,
        since=None,
        sets=sets,
        source="protocol_facts.json openai_route_mapping; openapi.json CompletionRequest",
    )


#: ``POST /v1/completions``'s body (``CompletionRequest``), in the order tgispy's server reads it.
COMPLETION_FIELDS: Final[tuple[Field, ...]] = (
    _completion("prompt", "object", "prompt", False, limit="max_client_batch_size"),
    _completion("model", "string", "string", sets="adapter_id"),
    _completion("frequency_penalty", "number", "f32", sets="frequency_penalty"),
    _completion("max_tokens", "integer", "u32", sets="max_new_tokens"),
    _completion("repetition_penalty", "number", "f32", sets="repetition_penalty"),
    _completion("seed", "integer", "u64", sets="seed"),
    _completion("stop", "array", "strings", sets="stop"),
    _completion("stream", "boolean", "bool", False, default=False),
    _completion("suffix", "string", "string"),  # rejected: 422 "suffix not supported"
    _completion("temperature", "number", "f32", sets="temperature"),
    _completion("top_p", "number", "f32", sets="top_p"),
)

_ROUTE_FIELDS: Final[Mapping[str, tuple[Field, ...]]] = MappingProxyType(
    {
        "generate": tuple(p for p in GENERATE_PARAMETERS if "generate" in p.routes),
        "generate_stream": tuple(p for p in GENERATE_PARAMETERS if "generate_stream" in p.routes),
        "chat": CHAT_FIELDS,
        "completions": COMPLETION_FIELDS,
    }
)


def route_fields(route: Route) -> dict[str, Field]:
    """The fields a client can set on ``route``, by name, in table order.

    For ``generate`` and ``generate_stream`` these are the ``parameters`` TGI accepts there
    (``best_of`` and ``decoder_input_details`` are refused when streaming); for ``chat`` and
    ``completions`` the body's top-level fields.

    Example:
        >>> "best_of" in route_fields("generate"), "best_of" in route_fields("generate_stream")
        (True, False)
    """
    return {f.name: f for f in _ROUTE_FIELDS[route]}


def names_of(parameter: str) -> tuple[str, ...]:
    """A generate parameter's name, then the OpenAI fields that set it (table order, no repeats).

    Example:
        >>> names_of("max_new_tokens")
        ('max_new_tokens', 'max_tokens', 'max_completion_tokens')
    """
    names = [parameter]
    for f in CHAT_FIELDS + COMPLETION_FIELDS:
        if f.sets == parameter and f.name not in names:
            names.append(f.name)
    return tuple(names)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route: its method, path and the first TGI version that serves it."""

    route: Route
    method: Literal["POST"]
    path: str
    since: Version | None


#: The generation routes (``protocol_facts.json`` and the vendored OpenAPI documents' paths).
ENDPOINTS: Final[Mapping[Route, Endpoint]] = MappingProxyType(
    {
        "generate": Endpoint("generate", "POST", "/generate", BASE),
        "generate_stream": Endpoint("generate_stream", "POST", "/generate_stream", BASE),
        "chat": Endpoint("chat", "POST", "/v1/chat/completions", (1, 4, 0)),
        # in the v1.4.5 schema, not in v0.9.4; the facts do not say which release added it
        "completions": Endpoint("completions", "POST", "/v1/completions", None),
    }
)


@dataclass(frozen=True, slots=True)
class GrammarType:
    """A ``GrammarType`` variant (``parameters.grammar`` / chat ``response_format``)."""

    name: str
    since: Version
    alias_of: str | None = None


#: The grammar variants, in TGI's declaration order (``generate_parameters.fields.grammar``).
GRAMMAR_TYPES: Final[tuple[GrammarType, ...]] = (
    GrammarType("json", (1, 4, 1)),
    GrammarType("json_object", (1, 4, 1), alias_of="json"),
    GrammarType("regex", (1, 4, 1)),
    GrammarType("json_schema", (3, 3, 0)),
)


#: The first TGI version that knows each request feature the client checks before sending:
#: the generate parameters added after 0.x, the chat route, its ``stream_options`` and the
#: ``json_schema`` grammar. Older servers silently ignore unknown body fields.
def _feature_since() -> dict[str, Version]:
    since: dict[str, Version] = {
        p.name: p.since for p in GENERATE_PARAMETERS if p.since is not None and p.since > BASE
    }
    since["chat"] = ENDPOINTS["chat"].since or BASE
    since["stream_options"] = route_fields("chat")["stream_options"].since or BASE
    since["json_schema"] = next(g.since for g in GRAMMAR_TYPES if g.name == "json_schema")
    return since


FEATURE_SINCE: Final[Mapping[str, Version]] = MappingProxyType(_feature_since())


@dataclass(frozen=True, slots=True)
class Launcher:
    """``text-generation-launcher``'s defaults (``protocol_facts.json`` ``info.launcher_defaults``).

    tgispy's server starts with them and its test doubles report them.
    """

    max_concurrent_requests: int = 128
    max_best_of: int = 2
    max_stop_sequences: int = 4
    max_top_n_tokens: int = 5
    max_client_batch_size: int = 4
    validation_workers: int = 2
    payload_limit: int = 2_000_000
    port: int = 3000


#: The launcher's defaults.
LAUNCHER: Final = Launcher()


@dataclass(frozen=True, slots=True)
class InfoField:
    """One field of ``GET /info``.

    Attributes:
        name: the JSON key.
        json_type: its OpenAPI type.
        nullable: whether TGI may report ``null``.
        since: the first version that reports it.
        until: the version that dropped it (``None``: still reported).
        formerly: its name before ``renamed``.
        renamed: the version that gave it its current name.
        default: what tgispy's servers and test doubles report unless told otherwise
            (:data:`REQUIRED` when they must be told).
    """

    name: str
    json_type: JsonType
    nullable: bool = False
    since: Version = BASE
    until: Version | None = None
    formerly: str | None = None
    renamed: Version | None = None
    default: Any = None


#: Marks an :class:`InfoField` without a default: :func:`info_document` must be given it.
REQUIRED: Final[Any] = object()

#: ``GET /info`` (``Info``), in TGI 3.x's order, then the fields TGI 2.3.0 dropped
#: (``protocol_facts.json`` ``info``: ``fields_3x``, ``fields_0_9``, ``changes``).
INFO_FIELDS: Final[tuple[InfoField, ...]] = (
    InfoField("model_id", "string", default=REQUIRED),
    InfoField("model_sha", "string", nullable=True),
    InfoField("model_pipeline_tag", "string", nullable=True, default="text-generation"),
    InfoField("max_concurrent_requests", "integer", default=LAUNCHER.max_concurrent_requests),
    InfoField("max_best_of", "integer", default=LAUNCHER.max_best_of),
    InfoField("max_stop_sequences", "integer", default=LAUNCHER.max_stop_sequences),
    InfoField(
        "max_input_tokens",
        "integer",
        formerly="max_input_length",
        renamed=(2, 1, 0),
        default=REQUIRED,
    ),
    InfoField("max_total_tokens", "integer", default=REQUIRED),
    InfoField("validation_workers", "integer", default=LAUNCHER.validation_workers),
    InfoField(
        "max_client_batch_size",
        "integer",
        since=(2, 0, 1),
        default=LAUNCHER.max_client_batch_size,
    ),
    InfoField("router", "string", since=(2, 0, 3), default="text-generation-router"),
    InfoField("version", "string", default=REQUIRED),
    InfoField("sha", "string", nullable=True),
    InfoField("docker_label", "string", nullable=True),
    InfoField("model_dtype", "string", until=(2, 3, 0)),
    InfoField("model_device_type", "string", until=(2, 3, 0)),
    InfoField("waiting_served_ratio", "number", until=(2, 3, 0)),
    InfoField("max_batch_total_tokens", "integer", until=(2, 3, 0)),
    InfoField("max_waiting_tokens", "integer", until=(2, 3, 0)),
    InfoField("max_batch_size", "integer", nullable=True, since=(1, 4, 1), until=(2, 3, 0)),
)


def info_document(**values: Any) -> dict[str, Any]:
    """A TGI 3.x ``/info`` body: the current fields in TGI's order, defaults filled in.

    Args:
        **values: a value for each field without a default (``model_id``,
            ``max_input_tokens``, ``max_total_tokens``, ``version``) and any to override.

    Raises:
        TypeError: a field is missing or unknown.

    Example:
        >>> body = info_document(model_id="m", max_input_tokens=4095, max_total_tokens=4096,
        ...                      version="3.3.6-dev0")
        >>> body["max_best_of"], body["router"]
        (2, 'text-generation-router')
    """
    current = [f for f in INFO_FIELDS if f.until is None]
    unknown = values.keys() - {f.name for f in current}
    if unknown:
        raise TypeError(f"not a TGI 3.x /info field: {sorted(unknown)}")
    body: dict[str, Any] = {}
    for info_field in current:
        value = values.get(info_field.name, info_field.default)
        if value is REQUIRED:
            raise TypeError(f"info_document() needs {info_field.name}=")
        body[info_field.name] = value
    return body
