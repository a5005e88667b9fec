"""Request parsing and validation, as TGI's router does it. Pure: no I/O.

Two stages, like TGI:

1. *Deserialisation* (axum's ``Json`` extractor + serde): the body must fit the request type; a
   misfit is a plain-text 422 naming the field (:func:`parse_generate`, :func:`parse_chat`,
   :func:`parse_completion`).
2. *Validation* (``router/src/validation.rs``): parameter ranges, checked in TGI's order, with
   TGI's messages (:func:`validate`, then :func:`resolve_lengths` once the prompt is tokenized).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, cast, get_args

from tgispy.server import _problems as problems
from tgispy.server._types import Sampling
from tgispy.tgi._protocol import (
    CHAT_FIELDS,
    COMPLETION_FIELDS,
    GENERATE_PARAMETERS,
    GRAMMAR_TYPES,
    LAUNCHER,
    PARAMETERS,
    Field,
)

__all__ = [
    "ChatRequest",
    "CompletionRequest",
    "GenerateParams",
    "GenerateRequest",
    "GrammarSpec",
    "Limits",
    "Validated",
    "check_best_of",
    "check_stream_params",
    "decode_body",
    "parse_chat",
    "parse_completion",
    "parse_generate",
    "resolve_lengths",
    "strict_json_loads",
    "validate",
]

Kind = Literal["bool", "u32", "i32", "u64", "usize", "f32", "string", "strings", "any", "map"]

_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "u32": (0, 2**32 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "u64": (0, 2**64 - 1),
    "usize": (0, 2**64 - 1),
}
_EXPECTED: Final[dict[str, str]] = {
    "bool": "a boolean",
    "u32": "u32",
    "i32": "i32",
    "u64": "u64",
    "usize": "usize",
    "f32": "f32",
    "string": "a string",
    "strings": "a sequence",
    "map": "a map",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """The server's limits that validation checks against (``/info`` reports them).

    Defaults: TGI's launcher (:data:`tgispy.tgi._protocol.LAUNCHER`) and a 2048-token context.
    """

    max_best_of: int = LAUNCHER.max_best_of
    max_stop_sequences: int = LAUNCHER.max_stop_sequences
    max_top_n_tokens: int = LAUNCHER.max_top_n_tokens
    max_input_tokens: int = 2047
    max_total_tokens: int = 2048
    max_client_batch_size: int = LAUNCHER.max_client_batch_size


@dataclass(frozen=True, slots=True)
class GrammarSpec:
    """A request's ``grammar`` (or ``response_format``): ``type`` and raw ``value``."""

    type: Literal["json", "json_object", "regex", "json_schema"]
    value: Any


@dataclass(frozen=True, slots=True)
class GenerateParams:
    """``GenerateParameters`` as deserialised (serde defaults filled in).

    The typed view of :data:`tgispy.tgi._protocol.GENERATE_PARAMETERS`: the same fields and
    defaults (``tests/tgi/test_protocol.py`` holds them equal).
    """

    best_of: int | None = None
    decoder_input_details: bool = False
    details: bool = False
    do_sample: bool = False
    frequency_penalty: float | None = None
    grammar: GrammarSpec | None = None
    max_new_tokens: int | None = None
    repetition_penalty: float | None = None
    return_full_text: bool | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    temperature: float | None = None
    top_k: int | None = None
    top_n_tokens: int | None = None
    top_p: float | None = None
    truncate: int | None = None
    typical_p: float | None = None
    watermark: bool = False
    adapter_id: str | None = None


#: TGI's ``default_parameters()``, used when the ``parameters`` object is absent: it samples.
DEFAULT_PARAMETERS: Final = GenerateParams(do_sample=True)


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """A ``/generate``, ``/generate_stream``, ``/`` or ``/tokenize`` body."""

    inputs: str
    parameters: GenerateParams
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Validated:
    """Parameters that passed TGI's validation (the prompt-length checks come later)."""

    sampling: Sampling
    best_of: int
    max_new_tokens: int | None
    stop: tuple[str, ...]
    truncate: int | None
    top_n_tokens: int
    grammar: GrammarSpec | None
    details: bool
    decoder_input_details: bool


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A ``/v1/chat/completions`` body, reduced to what generation needs."""

    messages: list[dict[str, str]]
    parameters: GenerateParams
    stream: bool
    include_usage: bool
    logprobs: bool
    model: str | None
    tools: bool = False


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A ``/v1/completions`` body."""

    prompts: list[str]
    parameters: GenerateParams
    stream: bool
    model: str | None
    suffix: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# --- deserialisation (serde-like messages) -------------------------------------------------


#: serde_json's nesting limit: 128 levels of ``[``/``{`` is one too many.
MAX_JSON_DEPTH: Final = 127
# A ``\\uD800``-``\\uDFFF`` escape: the only way a lone surrogate gets into decoded JSON.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests containers deeper than :data:`MAX_JSON_DEPTH` (iterative walk)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def strict_json_loads(text: str) -> Any:
    """:func:`json.loads` held to what serde_json accepts.

    Python's decoder is laxer than serde_json; each laxity lets through JSON that TGI rejects and
    that could break something later (a 500, or a NaN reaching the engine): ``NaN`` and
    ``Infinity`` literals, numbers that overflow to infinity, lone UTF-16 surrogates
    (``"\\ud800"``, which no UTF-8 encoder accepts) and nesting deep enough to exhaust the
    recursion limit (serde_json stops at 128 levels).

    Raises:
        ValueError: the text is not JSON, or is JSON that serde_json would refuse.

    Example:
        >>> strict_json_loads('{"a": [1, 2.5]}')
        {'a': [1, 2.5]}
        >>> strict_json_loads('{"a": NaN}')
        Traceback (most recent call last):
        ...
        ValueError: NaN is not valid JSON
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("recursion limit exceeded") from None
    # Both checks walk the value only when a cheap scan of the text says they might fail.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise ValueError("recursion limit exceeded")
    if _SURROGATE_ESCAPE.search(text) is not None and _has_lone_surrogate(value):
        raise ValueError("lone surrogate in hex escape")
    return value


def decode_body(raw: bytes) -> Any:
    """Decode a request body as axum's ``Json`` extractor would: strict UTF-8, strict JSON.

    Besides :func:`strict_json_loads`' rules, the body must be UTF-8 (Python would also guess
    UTF-16 and UTF-32, and skip a BOM).

    Raises:
        Problem: axum's plain-text 400 ``Failed to parse the request body as JSON: ...``.

    Example:
        >>> decode_body(b'{"inputs": "Hi"}')
        {'inputs': 'Hi'}
        >>> try:
        ...     decode_body(b'{"inputs": "Hi", "parameters": {"temperature": NaN}}')
        ... except problems.Problem as problem:
        ...     print(problem.status, problem.message)
        400 Failed to parse the request body as JSON: NaN is not valid JSON
    """
    try:
        return strict_json_loads(raw.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and the strict rules
        raise problems.bad_json(str(exc)) from exc


def _unexpected(value: object) -> str:
    """serde's ``Unexpected`` rendering of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _fail(path: str, message: str) -> problems.Problem:
    return problems.deserialize(f"{path}: {message}" if path else message)


def _as_f32(value: float) -> float:
    """Rust's ``value as f32``: single precision, so ``5e-324`` is ``0.0`` (and then refused
    like TGI refuses it, instead of reaching the engine as a positive number)."""
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _convert(path: str, value: Any, kind: Kind, optional: bool) -> Any:
    """Check one field like serde would and return it (``None`` stays ``None`` if optional)."""
    if kind == "any":
        return value
    if value is None:
        if optional:
            return None
        raise _fail(path, f"invalid type: null, expected {_EXPECTED[kind]}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind in _INT_RANGES:
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = _INT_RANGES[kind]
            if low <= value <= high:
                return value
            raise _fail(path, f"invalid value: integer `{value}`, expected {kind}")
    elif kind == "f32":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _as_f32(float(value))
    elif kind == "string":
        if isinstance(value, str):
            return value
    elif kind == "strings":
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise _fail(
                        f"{path}[{i}]", f"invalid type: {_unexpected(item)}, expected a string"
                    )
            return tuple(value)
    elif kind == "map" and isinstance(value, dict):
        return value
    raise _fail(path, f"invalid type: {_unexpected(value)}, expected {_EXPECTED[kind]}")


def _fields(
    obj: Mapping[str, Any], spec: Mapping[str, tuple[Kind, bool]], prefix: str
) -> dict[str, Any]:
    """Convert the fields of ``obj`` named in ``spec`` (unknown fields are ignored, as serde)."""
    out: dict[str, Any] = {}
    for name, (kind, optional) in spec.items():
        if name in obj:
            out[name] = _convert(f"{prefix}{name}", obj[name], kind, optional)
    return out


def _require_map(value: Any, path: str, type_name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"invalid type: {_unexpected(value)}, expected struct {type_name}")
    return value


def _serde_spec(fields: tuple[Field, ...]) -> dict[str, tuple[Kind, bool]]:
    """``name -> (kind, optional)`` for the fields :func:`_fields` reads (the rest have their
    own code: grammars, messages, prompts)."""
    kinds = get_args(Kind)
    return {f.name: (cast(Kind, f.wire), f.optional) for f in fields if f.wire in kinds}


_PARAMETER_FIELDS: Final = _serde_spec(GENERATE_PARAMETERS)
_GRAMMAR_TYPES: Final = tuple(g.name for g in GRAMMAR_TYPES)
_GRAMMAR_EXPECTED: Final = ", ".join(f"`{name}`" for name in _GRAMMAR_TYPES)


def _grammar(value: Any, path: str) -> GrammarSpec | None:
    if value is None:
        return None
    obj = _require_map(value, path, "GrammarType")
    if "type" not in obj:
        raise _fail(path, "missing field `type`")
    kind = obj["type"]
    if kind not in _GRAMMAR_TYPES:
        shown = _unexpected(kind) if not isinstance(kind, str) else f"`{kind}`"
        raise _fail(
            f"{path}.type",
            f"unknown variant {shown}, expected one of {_GRAMMAR_EXPECTED}",
        )
    if "value" not in obj:
        raise _fail(path, "missing field `value`")
    grammar_value = obj["value"]
    if kind == "regex":
        grammar_value = _convert(f"{path}.value", grammar_value, "string", False)
    elif kind == "json_schema":
        config = _require_map(grammar_value, f"{path}.value", "JsonSchemaConfig")
        if "schema" not in config:
            raise _fail(f"{path}.value", "missing field `schema`")
    return GrammarSpec(kind, grammar_value)


def _parameters(value: Any, path: str = "parameters") -> GenerateParams:
    obj = _require_map(value, path, "GenerateParameters")
    converted = _fields(obj, _PARAMETER_FIELDS, f"{path}.")
    if "grammar" in obj:
        converted["grammar"] = _grammar(obj["grammar"], f"{path}.grammar")
    return GenerateParams(**converted)


def parse_generate(body: Any, *, compat: bool = False) -> GenerateRequest:
    """Deserialise a ``GenerateRequest`` (``compat=True``: ``CompatGenerateRequest``, + ``stream``).

    Raises:
        Problem: axum's plain-text 422 when the body does not fit the type.

    Example:
        >>> req = parse_generate({"inputs": "Hi", "parameters": {"max_new_tokens": 5}})
        >>> req.parameters.max_new_tokens
        5
    """
    type_name = "CompatGenerateRequest" if compat else "GenerateRequest"
    obj = _require_map(body, "", type_name)
    if "inputs" not in obj:
        raise _fail("", "missing field `inputs`")
    inputs = _convert("inputs", obj["inputs"], "string", False)
    if "parameters" in obj:
        parameters = _parameters(obj["parameters"])
    else:
        parameters = DEFAULT_PARAMETERS
    stream = _convert("stream", obj.get("stream", False), "bool", False) if compat else False
    return GenerateRequest(inputs, parameters, stream)


_CHAT_FIELDS: Final = _serde_spec(CHAT_FIELDS)


def _message_content(value: Any, path: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts: list[str] = []
        for i, chunk in enumerate(value):
            chunk_obj = _require_map(chunk, f"{path}[{i}]", "MessageChunk")
            if chunk_obj.get("type") == "text":
                parts.append(_convert(f"{path}[{i}].text", chunk_obj.get("text"), "string", False))
            elif chunk_obj.get("type") == "image_url":
                raise problems.validation(
                    "tgispy serve has no vision model: image chunks are not supported"
                )
            else:
                raise _fail(f"{path}[{i}]", "unknown variant, expected `text` or `image_url`")
        return "".join(parts)
    raise _fail(path, f"invalid type: {_unexpected(value)}, expected a string or a sequence")


def _openai_sampling(fields: dict[str, Any]) -> dict[str, Any]:
    """TGI's mapping of OpenAI sampling fields: ``temperature=0`` means greedy, else sample."""
    temperature = fields.get("temperature")
    out: dict[str, Any] = {}
    if temperature is not None and temperature == 0.0:
        out["do_sample"] = False
    else:
        out["do_sample"] = True
        out["temperature"] = temperature
    out["top_p"] = fields.get("top_p")
    out["seed"] = fields.get("seed")
    out["frequency_penalty"] = fields.get("frequency_penalty")
    out["stop"] = fields.get("stop") or ()
    return out


def parse_chat(body: Any) -> ChatRequest:
    """Deserialise a ``/v1/chat/completions`` body and map it onto generation parameters.

    Example:
        >>> req = parse_chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3})
        >>> req.parameters.max_new_tokens, req.parameters.details
        (3, True)
    """
    obj = _require_map(body, "", "ChatRequest")
    if "messages" not in obj:
        raise _fail("", "missing field `messages`")
    raw_messages = obj["messages"]
    if not isinstance(raw_messages, list):
        raise _fail("messages", f"invalid type: {_unexpected(raw_messages)}, expected a sequence")
    messages: list[dict[str, str]] = []
    for i, raw in enumerate(raw_messages):
        msg = _require_map(raw, f"messages[{i}]", "Message")
        if "role" not in msg:
            raise _fail(f"messages[{i}]", "missing field `role`")
        role = _convert(f"messages[{i}].role", msg["role"], "string", False)
        content = _message_content(msg.get("content"), f"messages[{i}].content")
        messages.append({"role": role, "content": content})
    fields = _fields(obj, _CHAT_FIELDS, "")
    params = _openai_sampling(fields)
    max_tokens = fields.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = fields.get("max_tokens")
    params["max_new_tokens"] = max_tokens
    presence = fields.get("presence_penalty")
    # TGI's own mapping (router/src/lib.rs), kept for fidelity.
    params["repetition_penalty"] = presence + 2.0 if presence is not None else None
    logprobs = bool(fields.get("logprobs"))
    if logprobs:
        params["top_n_tokens"] = fields.get("top_logprobs")
    if "response_format" in obj:
        params["grammar"] = _grammar(obj["response_format"], "response_format")
    params["details"] = True
    options = fields.get("stream_options") or {}
    include_usage = bool(
        _convert("stream_options.include_usage", options.get("include_usage"), "bool", True)
    )
    tools = fields.get("tools")
    tool_choice = fields.get("tool_choice")
    uses_tools = bool(tools) and tool_choice != "none"
    return ChatRequest(
        messages=messages,
        parameters=GenerateParams(**params),
        stream=bool(fields.get("stream", False)),
        include_usage=include_usage,
        logprobs=logprobs,
        model=fields.get("model"),
        tools=uses_tools,
    )


_COMPLETION_FIELDS: Final = _serde_spec(COMPLETION_FIELDS)


def parse_completion(body: Any) -> CompletionRequest:
    """Deserialise a ``/v1/completions`` body (``prompt``: a string or a list of strings).

    Example:
        >>> parse_completion({"prompt": ["a", "b"], "max_tokens": 2}).prompts
        ['a', 'b']
    """
    obj = _require_map(body, "", "CompletionRequest")
    if "prompt" not in obj:
        raise _fail("", "missing field `prompt`")
    prompt = obj["prompt"]
    if isinstance(prompt, str):
        prompts = [prompt]
    else:
        prompts = list(_convert("prompt", prompt, "strings", False))
    fields = _fields(obj, _COMPLETION_FIELDS, "")
    params = _openai_sampling(fields)
    params["max_new_tokens"] = fields.get("max_tokens")
    params["repetition_penalty"] = fields.get("repetition_penalty")
    params["details"] = True
    return CompletionRequest(
        prompts=prompts,
        parameters=GenerateParams(**params),
        stream=bool(fields.get("stream", False)),
        model=fields.get("model"),
        suffix=fields.get("suffix") is not None,
    )


# --- validation (TGI's rules, order and messages) ------------------------------------------


def check_best_of(params: GenerateParams, limits: Limits) -> int:
    """``Infer::generate_best_of``'s checks on ``/generate``; returns the sequences to generate.

    ``best_of=0`` is not rejected on ``/generate`` (TGI treats it as 1).
    """
    best_of = params.best_of or 1
    if best_of > 1:
        if limits.max_best_of == 1:
            raise problems.validation("`best_of` != 1 is not allowed for this endpoint")
        if best_of > limits.max_best_of:
            raise problems.validation(
                f"`best_of` must be > 0 and <= {limits.max_best_of}. Given: {best_of}"
            )
    return best_of


def check_stream_params(params: GenerateParams) -> None:
    """``/generate_stream``'s checks that precede validation (they arrive as SSE error events)."""
    if params.best_of is not None and params.best_of != 1:
        raise problems.validation("`best_of` != 1 is not supported when streaming tokens")
    if params.decoder_input_details:
        raise problems.validation(
            "`decoder_input_details` == true is not supported when streaming tokens"
        )


def _neutral(spec: Field) -> float:
    assert spec.neutral is not None, spec.name
    return spec.neutral


def _range(spec: Field) -> tuple[float, float]:
    assert spec.minimum is not None and spec.maximum is not None, spec.name
    return spec.minimum.value, spec.maximum.value


# The ranges and "off" values validation uses (TGI's, from tgispy.tgi._protocol).
_TEMPERATURE: Final = PARAMETERS["temperature"]
_REPETITION: Final = PARAMETERS["repetition_penalty"]
_FREQUENCY: Final = PARAMETERS["frequency_penalty"]
_TOP_P: Final = PARAMETERS["top_p"]
_TYPICAL_P: Final = PARAMETERS["typical_p"]
_TOP_K: Final = PARAMETERS["top_k"]
_MAX_NEW_TOKENS: Final = PARAMETERS["max_new_tokens"]
_TRUNCATE: Final = PARAMETERS["truncate"]
_NEUTRAL_TEMPERATURE: Final = _neutral(_TEMPERATURE)
_NEUTRAL_REPETITION: Final = _neutral(_REPETITION)
_NEUTRAL_FREQUENCY: Final = _neutral(_FREQUENCY)
_NEUTRAL_TOP_P: Final = _neutral(_TOP_P)
_NEUTRAL_TYPICAL_P: Final = _neutral(_TYPICAL_P)
_NEUTRAL_TOP_K: Final = int(_neutral(_TOP_K))


def validate(inputs: str, params: GenerateParams, limits: Limits) -> Validated:
    """TGI's ``Validation::validate`` up to (not including) tokenization, in TGI's order.

    Raises:
        Problem: 422 ``validation`` with TGI's message.

    Example:
        >>> validate("Hi", GenerateParams(temperature=0.5), Limits()).sampling.do_sample
        True
    """
    best_of = params.best_of or 1
    sampling_requested = (
        params.do_sample
        or params.temperature is not None
        or params.top_k is not None
        or params.top_p is not None
        or params.typical_p is not None
    )
    if best_of > 1 and not sampling_requested:
        raise problems.validation("you must use sampling when `best_of` is > 1")
    temperature = _NEUTRAL_TEMPERATURE if params.temperature is None else params.temperature
    if _TEMPERATURE.violates(temperature):
        raise problems.validation("`temperature` must be strictly positive")
    repetition_penalty = (
        _NEUTRAL_REPETITION if params.repetition_penalty is None else params.repetition_penalty
    )
    if _REPETITION.violates(repetition_penalty):
        raise problems.validation("`repetition_penalty` must be strictly positive")
    frequency_penalty = (
        _NEUTRAL_FREQUENCY if params.frequency_penalty is None else params.frequency_penalty
    )
    if _FREQUENCY.violates(frequency_penalty):
        low, high = _range(_FREQUENCY)
        raise problems.validation(f"`frequency_penalty` must be >= {low} and <= {high}")
    top_p = _NEUTRAL_TOP_P
    if params.top_p is not None:
        if _TOP_P.violates(params.top_p):
            low, high = _range(_TOP_P)
            raise problems.validation(f"`top_p` must be > {low} and < {high}")
        top_p = params.top_p
    typical_p = _NEUTRAL_TYPICAL_P
    if params.typical_p is not None:
        if _TYPICAL_P.violates(params.typical_p):
            low, high = _range(_TYPICAL_P)
            raise problems.validation(f"`typical_p` must be > {low} and < {high}")
        typical_p = params.typical_p
    top_k = _NEUTRAL_TOP_K
    if params.top_k is not None:
        if _TOP_K.violates(params.top_k):
            raise problems.validation("`top_k` must be strictly positive")
        top_k = params.top_k
    if params.max_new_tokens is not None and _MAX_NEW_TOKENS.violates(params.max_new_tokens):
        raise problems.validation("`max_new_tokens` must be strictly positive")
    if len(params.stop) > limits.max_stop_sequences:
        raise problems.validation(
            f"`stop` supports up to {limits.max_stop_sequences} stop sequences. "
            f"Given: {len(params.stop)}"
        )
    if params.seed is not None and best_of > 1:
        raise problems.validation("`seed` must not be set when `best_of` > 1")
    top_n_tokens = params.top_n_tokens or 0
    if top_n_tokens > limits.max_top_n_tokens:
        raise problems.validation(
            f"`top_n_tokens` must be >= 0 and <= {limits.max_top_n_tokens}. Given: {top_n_tokens}"
        )
    if not inputs:
        raise problems.validation("`inputs` cannot be empty")
    if params.truncate is not None and (
        _TRUNCATE.violates(params.truncate) or params.truncate > limits.max_input_tokens
    ):
        raise problems.validation(
            f"`truncate` must be strictly positive and less than {limits.max_input_tokens}. "
            f"Given: {params.truncate}"
        )
    # TGI's Python shard samples when asked to, or when any warper is active.
    do_sample = (
        params.do_sample
        or temperature != _NEUTRAL_TEMPERATURE
        or top_k != _NEUTRAL_TOP_K
        or top_p < _NEUTRAL_TOP_P
        or typical_p < _NEUTRAL_TYPICAL_P
    )
    sampling = Sampling(
        do_sample=do_sample,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        typical_p=typical_p,
        repetition_penalty=repetition_penalty,
        frequency_penalty=frequency_penalty,
        seed=params.seed if do_sample else None,
    )
    return Validated(
        sampling=sampling,
        best_of=best_of,
        max_new_tokens=params.max_new_tokens,
        stop=params.stop,
        truncate=params.truncate,
        top_n_tokens=top_n_tokens,
        grammar=params.grammar,
        details=params.details or params.decoder_input_details,
        decoder_input_details=params.decoder_input_details,
    )


def resolve_lengths(input_length: int, max_new_tokens: int | None, limits: Limits) -> int:
    """TGI's length checks once the prompt is tokenized; returns the ``max_new_tokens`` to use.

    An absent ``max_new_tokens`` means "up to ``max_total_tokens``" (TGI >= 3.0).

    Example:
        >>> resolve_lengths(10, None, Limits(max_input_tokens=99, max_total_tokens=100))
        90
    """
    if max_new_tokens is None:
        max_new_tokens = max(limits.max_total_tokens - input_length, 0)
    if input_length + max_new_tokens > limits.max_total_tokens:
        raise problems.validation(
            f"`inputs` tokens + `max_new_tokens` must be <= {limits.max_total_tokens}. "
            f"Given: {input_length} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
        )
    if input_length > limits.max_input_tokens:
        raise problems.validation(
            f"`inputs` must have less than {limits.max_input_tokens} tokens. Given: {input_length}"
        )
    return max_new_tokens


def with_parameters(request: GenerateRequest, **changes: Any) -> GenerateRequest:
    """A copy of ``request`` with some parameters replaced."""
    return replace(request, parameters=replace(request.parameters, **changes))
