"""Build TGI request bodies from DSPy / OpenAI-style keyword arguments (pure, I/O-free).

Everything a TGI server would refuse, and everything it would silently mishandle, is caught here
with an :class:`~tgispy.errors.InvalidRequestError` that names the fix, before any network call:

* ``temperature`` 0, ``None`` or absent means truly greedy decoding: ``do_sample=false`` and no
  ``temperature`` / ``top_p`` / ``top_k`` / ``typical_p`` in the body, because TGI turns
  sampling on for any of them and rejects ``temperature=0``. Under greedy decoding those
  sampling knobs have no effect, so they are validated and then left out.
* ``top_p`` / ``typical_p`` of exactly 1.0 mean "off" and are left out (TGI rejects 1.0).
* ``n > 1`` becomes ``best_of=n`` with sampling and details on (TGI returns the other sequences
  in ``details.best_of_sequences``).
* ``frequency_penalty`` is passed through unchanged (never DSPy 2.4's ``1 - v``).
* unknown keys are errors (typos are caught), except :data:`CLIENT_ONLY_KEYS`, which are dropped.
* with a :class:`~tgispy.tgi.ServerInfo`, the server's limits and version are enforced too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tgispy._snapshot import flat_snapshot
from tgispy.errors import InvalidRequestError
from tgispy.tgi._info import PARAMETER_SINCE, ServerInfo
from tgispy.tgi._protocol import (
    GRAMMAR_TYPES,
    PARAMETERS,
    Field,
    names_of,
    route_fields,
)

__all__ = [
    "CHAT_KEYS",
    "CLIENT_ONLY_KEYS",
    "GENERATE_KEYS",
    "build_chat_request",
    "build_generate_request",
    "generation_parameters",
]

#: Keys that configure the client, never the generation: dropped from every request body.
#: (``n`` is among them because it is never sent as ``n``; the builders turn it into ``best_of``.)
CLIENT_ONLY_KEYS: frozenset[str] = frozenset(
    {
        "model",
        "port",
        "url",
        "n",
        "http_request_kwargs",
        "cache",
        "stream",
        "timeout",
        "api_key",
        "headers",
        "num_retries",
        "max_retries",
    }
)

#: The generation keys :func:`generation_parameters` understands: TGI's generate parameters
#: (:data:`tgispy.tgi._protocol.GENERATE_PARAMETERS`) and DSPy's name for ``max_new_tokens``.
GENERATE_KEYS: frozenset[str] = frozenset(route_fields("generate")) | {"max_tokens"}

#: The generation keys :func:`build_chat_request` understands: the fields of TGI's chat body
#: (:data:`tgispy.tgi._protocol.CHAT_FIELDS`) but those the builder sets itself or TGI ignores,
#: and the TGI-native names the builder maps onto chat fields.
CHAT_KEYS: frozenset[str] = (
    frozenset(route_fields("chat"))
    - {"messages", "model", "n", "stream", "stream_options", "logit_bias"}
) | {"max_new_tokens", "grammar", "adapter_id"}

_GENERATE_ACCEPTED = GENERATE_KEYS | CLIENT_ONLY_KEYS
_CHAT_ACCEPTED = CHAT_KEYS | CLIENT_ONLY_KEYS
_GRAMMAR_TYPES = tuple(g.name for g in GRAMMAR_TYPES if g.alias_of is None)
_GRAMMAR_ALIASES = {g.name: g.alias_of for g in GRAMMAR_TYPES if g.alias_of is not None}
_CHAT_FIELDS = route_fields("chat")
_MAX_NEW_TOKENS = names_of("max_new_tokens")  # TGI's name first: it wins when names disagree
_TOOL_CHOICES = ("auto", "none", "required")


def _fail(message: str) -> InvalidRequestError:
    return InvalidRequestError(message)


def _unknown_keys(unknown: set[str], accepted: frozenset[str], route: str) -> InvalidRequestError:
    import difflib  # error path only

    parts = []
    for key in sorted(unknown):
        close = difflib.get_close_matches(key, accepted, n=1)
        parts.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    supported = ", ".join(sorted(accepted - CLIENT_ONLY_KEYS))
    return _fail(
        f"unsupported generation argument(s) for {route}: {', '.join(parts)}. "
        f"Supported: {supported}."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)  # NaN / inf would be rejected by serde or mean nothing
    )


def _int_arg(name: str, value: Any, *, minimum: int, hint: str = "") -> int:
    if not _is_int(value) or value < minimum:
        raise _fail(f"{name} must be an integer >= {minimum}, got {value!r}{hint}")
    return int(value)


def _bool_arg(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"{name} must be True or False, got {value!r}")
    return value


def _number_arg(name: str, value: Any) -> float:
    if not _is_number(value):
        raise _fail(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _probability(name: str, value: Any) -> float | None:
    """``top_p`` / ``typical_p``: ``None`` or exactly 1 mean "off"; else it must be in (0, 1)."""
    if value is None:
        return None
    number = _number_arg(name, value)
    spec = PARAMETERS[name]
    if number == spec.neutral:
        return None
    if spec.violates(number):
        low, high = _bounds(name)
        raise _fail(
            f"{name} must be > {low:g} and < {high:g} (use {spec.neutral} or None to turn it "
            f"off), got {value!r}"
        )
    return number


def _bounds(name: str, fields: Mapping[str, Field] = PARAMETERS) -> tuple[float, float]:
    """The range of a two-sided field, for messages."""
    spec = fields[name]
    assert spec.minimum is not None and spec.maximum is not None
    return spec.minimum.value, spec.maximum.value


def _temperature(value: Any) -> float | None:
    """The temperature to sample with, or ``None`` for greedy decoding."""
    if value is None:
        return None
    number = _number_arg("temperature", value)
    if _CHAT_FIELDS["temperature"].violates(number):  # the OpenAI routes' range: 0 is greedy
        raise _fail(f"temperature must be >= 0 (0 means greedy decoding), got {value!r}")
    return number if number > 0 else None


def _max_new_tokens(kwargs: Mapping[str, Any], info: ServerInfo | None) -> int | None:
    given = [(name, kwargs[name]) for name in _MAX_NEW_TOKENS if kwargs.get(name) is not None]
    if not given:
        return None
    name, value = given[0]
    for other_name, other in given[1:]:
        if other != value:
            raise _fail(f"{name}={value!r} and {other_name}={other!r} disagree; pass only one")
    if not _is_int(value) or value < PARAMETERS["max_new_tokens"].least_int:
        raise _fail(
            f"{name} must be a positive integer (the number of tokens to generate), got {value!r}"
        )
    limit = info.max_total_tokens if info is not None else None
    if limit is not None and value >= limit:
        raise _fail(
            f"{name}={value} leaves no room for the prompt: the server allows {limit} tokens in "
            f"total (prompt + generated); use a smaller {name}"
        )
    return int(value)


def _stop(value: Any, info: ServerInfo | None) -> list[str] | None:
    if value is None:
        return None
    stop = [value] if isinstance(value, str) else value
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
        raise _fail(f"stop must be a string or a list of strings, got {value!r}")
    if not stop:
        return None
    limit = info.max_stop_sequences if info is not None else None
    if limit is not None and len(stop) > limit:
        raise _fail(
            f"stop has {len(stop)} sequences but the server accepts at most {limit}; pass fewer "
            f"stop sequences (or raise the server's --max-stop-sequences)"
        )
    return list(stop)


def _require(info: ServerInfo | None, feature: str, what: str) -> None:
    if info is not None and not info.supports(feature):
        since = ".".join(map(str, PARAMETER_SINCE[feature]))
        raise _fail(
            f"{what} needs TGI >= {since} but the server reports version {info.version}; "
            f"upgrade the server or drop {what}"
        )


def _frequency_penalty(value: Any, info: ServerInfo | None) -> float | None:
    if value is None:
        return None
    number = _number_arg("frequency_penalty", value)
    if PARAMETERS["frequency_penalty"].violates(number):
        low, high = _bounds("frequency_penalty")
        raise _fail(f"frequency_penalty must be between {low} and {high}, got {value!r}")
    if number == 0.0 and info is not None and not info.supports("frequency_penalty"):
        return None  # 0 is "no penalty": nothing is lost by leaving it out for an old server
    _require(info, "frequency_penalty", "frequency_penalty")
    return number


def _grammar(value: Any, info: ServerInfo | None, name: str) -> dict[str, Any] | None:
    """Validate a TGI grammar ``{"type": "json" | "regex" | "json_schema", "value": ...}``."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "type" not in value or "value" not in value:
        raise _fail(
            f"{name} must look like {{'type': 'json', 'value': <JSON schema>}} or "
            f"{{'type': 'regex', 'value': <regex>}}, got {value!r}"
        )
    kind = value["type"]
    kind = _GRAMMAR_ALIASES.get(kind, kind)  # "json_object" is TGI's alias for "json"
    inner = value["value"]
    if kind not in _GRAMMAR_TYPES:
        raise _fail(f"{name} type must be one of {', '.join(_GRAMMAR_TYPES)}, got {kind!r}")
    if kind == "json" and not isinstance(inner, (Mapping, str)):
        raise _fail(f"{name} 'json' value must be a JSON schema (dict or string), got {inner!r}")
    if kind == "regex" and not isinstance(inner, str):
        raise _fail(f"{name} 'regex' value must be a string, got {inner!r}")
    if kind == "json_schema" and not (isinstance(inner, Mapping) and "schema" in inner):
        raise _fail(
            f"{name} 'json_schema' value must be {{'schema': <JSON schema>}}, got {inner!r}"
        )
    _require(info, "grammar", name)
    if kind == "json_schema":
        _require(info, "json_schema", f"{name} type 'json_schema'")
    return {"type": kind, "value": inner}


def _adapter_id(value: Any, info: ServerInfo | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(f"adapter_id must be a non-empty string (a LoRA adapter id), got {value!r}")
    _require(info, "adapter_id", "adapter_id")
    return value


# Boolean switches sent as given (``details`` stays on when ``n > 1`` needs it): the table's
# boolean parameters but do_sample (tests/tgi/test_protocol.py holds them equal), listed in the
# order the client has always checked and sent them, so the first bad one reported stays the same.
_FLAGS = ("watermark", "return_full_text", "decoder_input_details", "details")


#: generation_parameters' results for recent (kwargs, info, stream): a program sends the same
#: settings call after call, and checking them costs more than the rest of building the request
_MEMO: dict[tuple[Any, ...], tuple[ServerInfo | None, dict[str, Any]]] = {}
_MEMO_SIZE = 256


def _copy_parameters(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if type(v) is list else v for k, v in params.items()}


def generation_parameters(
    kwargs: Mapping[str, Any], *, info: ServerInfo | None = None, stream: bool = False
) -> dict[str, Any]:
    """Map DSPy / OpenAI-style kwargs to TGI's ``GenerateParameters``.

    Args:
        kwargs: generation arguments (``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``n``,
            ...; see :data:`GENERATE_KEYS`). :data:`CLIENT_ONLY_KEYS` are ignored.
        info: the replica's ``/info``; when given, its limits and version are enforced too.
        stream: whether the body is for ``/generate_stream``.

    Returns:
        A new dict, ready to be the body's ``parameters``.

    Raises:
        InvalidRequestError: an argument the server would reject or mishandle; the message
            names the fix.

    Example:
        >>> generation_parameters({"max_tokens": 20, "temperature": 0, "top_p": 0.9, "n": 1})
        {'do_sample': False, 'max_new_tokens': 20}
        >>> generation_parameters({"temperature": 0.7, "n": 3, "stop": "\\n"})
        {'do_sample': True, 'temperature': 0.7, 'details': True, 'best_of': 3, 'stop': ['\\n']}
    """
    snapshot = flat_snapshot(kwargs)
    key = None if snapshot is None else (id(info), stream, snapshot)
    if key is not None:
        hit = _MEMO.get(key)  # the entry holds its info, so that id is not reused meanwhile
        if hit is not None:
            return _copy_parameters(hit[1])
    params = _generation_parameters(kwargs, info, stream)
    if key is not None:
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()
        _MEMO[key] = (info, _copy_parameters(params))
    return params


def _generation_parameters(
    kwargs: Mapping[str, Any], info: ServerInfo | None, stream: bool
) -> dict[str, Any]:
    unknown = kwargs.keys() - _GENERATE_ACCEPTED
    if unknown:
        raise _unknown_keys(unknown, _GENERATE_ACCEPTED, "TGI /generate")
    get = kwargs.get

    # ---- how many sequences, and whether to sample -----------------------------------------
    n = get("n")
    n = 1 if n is None else _int_arg("n", n, minimum=1)
    best_of = get("best_of")
    if best_of is not None:
        best_of = _int_arg("best_of", best_of, minimum=PARAMETERS["best_of"].least_int)
        if n > 1 and best_of != n:
            raise _fail(f"n={n} and best_of={best_of} disagree; pass only n")
    elif n > 1:
        best_of = n
    temperature = _temperature(get("temperature"))
    do_sample = get("do_sample")
    if do_sample is not None:
        _bool_arg("do_sample", do_sample)
    top_p = _probability("top_p", get("top_p"))
    typical_p = _probability("typical_p", get("typical_p"))
    top_k = get("top_k")
    if top_k is not None:
        top_k = _int_arg(
            "top_k",
            top_k,
            minimum=PARAMETERS["top_k"].least_int,
            hint=" (use None to turn top-k off)",
        )
    many = best_of is not None and best_of > 1
    explicit_zero = get("temperature") is not None and temperature is None
    if explicit_zero and (do_sample or many):
        raise _fail(
            "temperature=0 asks for greedy decoding but "
            + (f"n={best_of} needs sampling" if many else "do_sample=True asks for sampling")
            + "; set temperature > 0 (e.g. 0.7)"
            + (" or n=1" if many else " or drop do_sample")
        )
    if do_sample is False and (temperature is not None or many):
        raise _fail(
            "do_sample=False asks for greedy decoding but "
            + (f"n={best_of} needs sampling" if many else f"temperature={temperature} samples")
            + "; drop do_sample or the sampling argument"
        )
    sampling = temperature is not None or bool(do_sample) or many

    params: dict[str, Any] = {"do_sample": sampling}
    if sampling:
        if temperature is not None:
            params["temperature"] = temperature
        if top_p is not None:
            params["top_p"] = top_p
        if top_k is not None:
            params["top_k"] = top_k
        if typical_p is not None:
            params["typical_p"] = typical_p

    max_new_tokens = _max_new_tokens(kwargs, info)
    if max_new_tokens is not None:
        params["max_new_tokens"] = max_new_tokens

    seed = get("seed")
    if seed is not None:
        seed = _int_arg("seed", seed, minimum=PARAMETERS["seed"].least_int)
        if many:
            raise _fail(
                f"seed cannot be combined with n/best_of={best_of} (TGI refuses a seed when it "
                f"samples several sequences); drop seed or use n=1"
            )
        params["seed"] = seed

    if best_of is not None:
        if many:
            if stream:
                raise _fail(f"n/best_of={best_of} cannot be streamed; use stream=False or n=1")
            if info is not None and info.max_best_of is not None and best_of > info.max_best_of:
                raise _fail(
                    f"n/best_of={best_of} is above the server's max_best_of="
                    f"{info.max_best_of}; use n <= {info.max_best_of}, call several times, or "
                    f"raise the server's --max-best-of"
                )
            params["details"] = True  # the other sequences only come back with details
        params["best_of"] = best_of

    stop = _stop(get("stop"), info)
    if stop is not None:
        params["stop"] = stop

    repetition_penalty = get("repetition_penalty")
    if repetition_penalty is not None:
        spec = PARAMETERS["repetition_penalty"]
        if spec.violates(_number_arg("repetition_penalty", repetition_penalty)):
            raise _fail(
                f"repetition_penalty must be > 0 ({spec.neutral} means no penalty), "
                f"got {repetition_penalty!r}"
            )
        params["repetition_penalty"] = float(repetition_penalty)

    frequency_penalty = _frequency_penalty(get("frequency_penalty"), info)
    if frequency_penalty is not None:
        params["frequency_penalty"] = frequency_penalty

    truncate = get("truncate")
    if truncate is not None:
        truncate = _int_arg("truncate", truncate, minimum=PARAMETERS["truncate"].least_int)
        limit = info.max_input_tokens if info is not None else None
        if limit is not None and truncate > limit:
            raise _fail(
                f"truncate={truncate} is above the server's max_input_tokens={limit}; use "
                f"truncate <= {limit}"
            )
        params["truncate"] = truncate

    for flag in _FLAGS:
        value = get(flag)
        if value is not None:
            params[flag] = _bool_arg(flag, value) or params.get(flag, False)
    if stream and params.get("decoder_input_details"):
        raise _fail("decoder_input_details=True cannot be streamed; use stream=False")

    top_n_tokens = get("top_n_tokens")
    if top_n_tokens is not None:
        top_n_tokens = _int_arg(
            "top_n_tokens", top_n_tokens, minimum=PARAMETERS["top_n_tokens"].least_int
        )
        if top_n_tokens:  # 0 means "none"
            _require(info, "top_n_tokens", "top_n_tokens")
            params["top_n_tokens"] = top_n_tokens

    grammar = _grammar(get("grammar"), info, "grammar")
    if grammar is not None:
        params["grammar"] = grammar

    adapter_id = _adapter_id(get("adapter_id"), info)
    if adapter_id is not None:
        params["adapter_id"] = adapter_id
    return params


def build_generate_request(
    prompt: str,
    kwargs: Mapping[str, Any],
    *,
    info: ServerInfo | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """The JSON body for ``POST /generate`` or ``/generate_stream``.

    ``parameters`` is always present: when it is missing TGI (>= 1.4) falls back to defaults with
    sampling turned on.

    Raises:
        InvalidRequestError: see :func:`generation_parameters`; also an empty or non-string
            prompt.

    Example:
        >>> build_generate_request("Hi", {"max_tokens": 5})
        {'inputs': 'Hi', 'parameters': {'do_sample': False, 'max_new_tokens': 5}}
    """
    if not isinstance(prompt, str) or not prompt:
        raise _fail(f"prompt must be a non-empty string, got {prompt!r}")
    return {"inputs": prompt, "parameters": generation_parameters(kwargs, info=info, stream=stream)}


# ---- /v1/chat/completions --------------------------------------------------------------------


def _chat_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise _fail(
            "messages must be a non-empty list like [{'role': 'user', 'content': 'Hi'}], "
            f"got {messages!r}"
        )
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise _fail(
                f"messages[{i}] must be a dict with a 'role' string, like "
                f"{{'role': 'user', 'content': 'Hi'}}, got {message!r}"
            )
        body = dict(message)
        content = body.get("content")
        if content is None:
            body.pop("content", None)
            if not body.get("tool_calls"):
                raise _fail(f"messages[{i}] needs 'content' (or 'tool_calls'), got {message!r}")
        elif not isinstance(content, (str, list)):
            raise _fail(
                f"messages[{i}]['content'] must be a string or a list of content parts, "
                f"got {content!r}"
            )
        elif body.get("tool_calls") and not content:
            # TGI reads a message as content XOR tool_calls; an empty content beside tool_calls
            # carries nothing.
            body.pop("content")
        out.append(body)
    return out


def _response_format(value: Any, info: ServerInfo | None) -> dict[str, Any] | None:
    """OpenAI ``response_format`` (or a TGI grammar) -> TGI's ``{"type": "json", "value": ...}``."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "type" not in value:
        raise _fail(
            "response_format must look like {'type': 'json_schema', 'json_schema': {'schema': "
            "<JSON schema>}} or {'type': 'json', 'value': <JSON schema>}, "
            f"got {value!r}"
        )
    kind = value["type"]
    if kind == "text":
        return None  # OpenAI's explicit "no constraint"
    if kind == "json_schema" and isinstance(value.get("json_schema"), Mapping):
        schema = value["json_schema"].get("schema")
        if schema is None:
            raise _fail(
                "response_format json_schema needs a 'schema': {'json_schema': {'schema': ...}}"
            )
        return _grammar({"type": "json", "value": schema}, info, "response_format")
    if kind == "json_schema" and isinstance(value.get("value"), Mapping):
        # TGI 3.3's own json_schema shape; older servers read the same schema as "json".
        schema = value["value"].get("schema")
        if schema is not None:
            return _grammar({"type": "json", "value": schema}, info, "response_format")
    if kind in ("json_object", "json") and "value" not in value:
        schema = value.get("schema")
        if schema is None:
            raise _fail(
                "TGI cannot constrain to 'any JSON object': pass the schema, e.g. "
                "response_format={'type': 'json_object', 'value': {'properties': {...}}}"
            )
        return _grammar({"type": "json", "value": schema}, info, "response_format")
    return _grammar(value, info, "response_format")


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(f"tools must be a non-empty list of tool definitions, got {value!r}")
    tools = []
    for i, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
            or tool.get("type", "function") != "function"
        ):
            raise _fail(
                f"tools[{i}] must look like {{'type': 'function', 'function': {{'name': ..., "
                f"'parameters': <JSON schema>}}}}, got {tool!r}"
            )
        tools.append({"type": "function", **tool})
    return tools


def _tool_choice(value: Any, tools: list[dict[str, Any]] | None) -> Any:
    if value is None:
        return None
    if tools is None:
        raise _fail("tool_choice needs tools; pass tools=[...] or drop tool_choice")
    names = {tool["function"]["name"] for tool in tools}
    if isinstance(value, str):
        if value in _TOOL_CHOICES:
            return value
        name = value
    elif isinstance(value, Mapping) and isinstance(value.get("function"), Mapping):
        name = value["function"].get("name")
    else:
        raise _fail(
            "tool_choice must be 'auto', 'none', 'required', a tool name or "
            f"{{'type': 'function', 'function': {{'name': ...}}}}, got {value!r}"
        )
    if name not in names:
        raise _fail(f"tool_choice names {name!r}, which is not in tools ({sorted(names)})")
    return {"type": "function", "function": {"name": name}}


def build_chat_request(
    messages: Sequence[Mapping[str, Any]],
    kwargs: Mapping[str, Any],
    *,
    model: str | None = None,
    info: ServerInfo | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """The JSON body for ``POST /v1/chat/completions``.

    ``temperature`` 0, ``None`` or absent sends ``temperature: 0`` (TGI's chat route reads 0 as
    greedy, while an absent temperature would sample) and leaves ``top_p`` out. Streaming asks for
    a final usage chunk (``stream_options.include_usage``). ``response_format`` accepts OpenAI's
    ``{"type": "json_schema", "json_schema": {"schema": ...}}`` and TGI's ``{"type": "json",
    "value": ...}`` / ``{"type": "regex", "value": ...}`` and is sent in TGI's form.

    Args:
        messages: OpenAI-style messages (copied, never mutated).
        kwargs: generation arguments (see :data:`CHAT_KEYS`); :data:`CLIENT_ONLY_KEYS` ignored.
        model: the body's ``model``; TGI reads any value but ``"tgi"`` as a LoRA adapter id, so
            it defaults to ``adapter_id`` when given, else ``"tgi"``.
        info: the replica's ``/info``, to enforce its limits and version.
        stream: whether to stream.

    Raises:
        InvalidRequestError: an argument the server would reject or mishandle.

    Example:
        >>> build_chat_request([{"role": "user", "content": "Hi"}], {"max_tokens": 8})
        {'model': 'tgi', 'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 8, \
'temperature': 0.0}
    """
    unknown = kwargs.keys() - _CHAT_ACCEPTED
    if unknown:
        raise _unknown_keys(unknown, _CHAT_ACCEPTED, "TGI /v1/chat/completions")
    _require(info, "chat", "the chat API (/v1/chat/completions)")
    get = kwargs.get
    n = get("n")
    if n is not None and _int_arg("n", n, minimum=1) > 1:
        raise _fail(
            f"TGI's chat API returns one choice (n={n} is ignored by the server); use the "
            "/generate path (n maps to best_of) or make n calls"
        )

    adapter_id = _adapter_id(get("adapter_id"), info)
    if adapter_id is not None and model is not None and model != adapter_id:
        raise _fail(
            f"model={model!r} and adapter_id={adapter_id!r} disagree: TGI's chat API selects "
            "the adapter through model; pass only one"
        )
    body: dict[str, Any] = {
        "model": model or adapter_id or "tgi",
        "messages": _chat_messages(messages),
    }

    max_tokens = _max_new_tokens(kwargs, info)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    temperature = _temperature(get("temperature"))
    top_p = _probability("top_p", get("top_p"))
    body["temperature"] = 0.0 if temperature is None else temperature
    if temperature is not None and top_p is not None:
        body["top_p"] = top_p

    seed = get("seed")
    if seed is not None:
        body["seed"] = _int_arg("seed", seed, minimum=_CHAT_FIELDS["seed"].least_int)
    stop = _stop(get("stop"), info)
    if stop is not None:
        body["stop"] = stop
    frequency_penalty = _frequency_penalty(get("frequency_penalty"), info)
    if frequency_penalty is not None:
        body["frequency_penalty"] = frequency_penalty
    presence_penalty = get("presence_penalty")
    if presence_penalty is not None:
        number = _number_arg("presence_penalty", presence_penalty)
        if _CHAT_FIELDS["presence_penalty"].violates(number):
            low, high = _bounds("presence_penalty", _CHAT_FIELDS)
            raise _fail(
                f"presence_penalty must be between {low} and {high}, got {presence_penalty!r}"
            )
        body["presence_penalty"] = number
    logprobs = get("logprobs")
    if logprobs is not None:
        body["logprobs"] = _bool_arg("logprobs", logprobs)
    top_logprobs = get("top_logprobs")
    if top_logprobs is not None:
        body["top_logprobs"] = _int_arg(
            "top_logprobs", top_logprobs, minimum=_CHAT_FIELDS["top_logprobs"].least_int
        )
        if body["top_logprobs"] and not body.get("logprobs"):
            raise _fail("top_logprobs needs logprobs=True")

    if get("response_format") is not None and get("grammar") is not None:
        raise _fail("pass either response_format or grammar, not both")
    response_format = _response_format(
        get("response_format") if get("response_format") is not None else get("grammar"), info
    )
    tools_value = get("tools")
    tools = _tools(tools_value) if tools_value is not None else None
    if tools is not None and response_format is not None:
        raise _fail(
            "TGI cannot combine tools with response_format (Grammar and tools are mutually "
            "exclusive); drop one of them"
        )
    if tools is not None:
        _require(info, "grammar", "tools")
        body["tools"] = tools
    tool_choice = _tool_choice(get("tool_choice"), tools)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    tool_prompt = get("tool_prompt")
    if tool_prompt is not None:
        if not isinstance(tool_prompt, str):
            raise _fail(f"tool_prompt must be a string, got {tool_prompt!r}")
        if tools is None:
            raise _fail("tool_prompt needs tools; pass tools=[...] or drop tool_prompt")
        body["tool_prompt"] = tool_prompt
    if response_format is not None:
        body["response_format"] = response_format

    if stream:
        body["stream"] = True
        if info is None or info.supports_stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body
