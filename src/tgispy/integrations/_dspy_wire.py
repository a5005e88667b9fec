"""DSPy 3.4 canonical requests <-> TGI wire bodies, and TGI errors -> lm15 errors (pure, I/O-free).

DSPy 3.4 hands an engine one ``dspy.lm15.Request`` (messages, system, tools, ``Config``) and wants
one ``dspy.lm15.Response`` back. This module is the whole translation: it builds the body for TGI's
Messages API (``/v1/chat/completions``) or, for text models, ``/generate``, through the same
validating builders :class:`~tgispy.lm.HFClientTGI` uses, and turns TGI's answers, stream chunks
and errors into lm15 values. Nothing a TGI server cannot carry is dropped silently: it is refused
with an lm15 error that names the fix, before any network call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tgispy.integrations._dspy_require import require_dspy

require_dspy()

from dspy import lm15  # noqa: E402  (after the version check, which names the fix)

from tgispy.engines import Constraint, Delta, Result  # noqa: E402
from tgispy.engines import Request as EngineRequest  # noqa: E402
from tgispy.errors import (  # noqa: E402
    AllReplicasFailedError,
    ConfigError,
    ContextWindowExceededError,
    GenerationError,
    IncompleteGenerationError,
    MalformedResponseError,
    NoHealthyReplicaError,
    OverloadedError,
    ServerError,
    TGIError,
    TGITimeoutError,
    TransportError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi._info import ServerInfo  # noqa: E402
from tgispy.tgi._protocol import names_of  # noqa: E402
from tgispy.tgi._request import (  # noqa: E402
    CHAT_KEYS,
    GENERATE_KEYS,
    build_chat_request,
    build_generate_request,
)
from tgispy.tgi._response import (  # noqa: E402
    ChatChunk,
    GenerateResponse,
    StreamEvent,
    parse_chat_response,
)

__all__ = [
    "CHAT_PARAMETERS",
    "DIALECT_RESERVED",
    "GENERATE_PARAMETERS",
    "PROVIDER",
    "ChatStreamMapper",
    "DialectStreamMapper",
    "Endpoint",
    "GenerateStreamMapper",
    "PromptFormat",
    "WireRequest",
    "build_wire_request",
    "chat_response",
    "check_constraint",
    "default_prompt",
    "dialect_request",
    "dialect_response",
    "generate_response",
    "served_model",
    "to_lm15_error",
]

#: how errors and usage name the provider
PROVIDER = "tgi"

Endpoint = Literal["chat", "generate"]

#: renders a canonical request as the prompt of a ``/generate`` call
PromptFormat = Callable[[Any], str]

CHAT_PATH = "/v1/chat/completions"
GENERATE_PATH = "/generate"

#: TGI-native keys an engine's ``parameters`` or a request's ``Config.extensions`` may set for the
#: Messages API. ``response_format``, tools and logprobs come from the canonical ``Config``.
CHAT_PARAMETERS: frozenset[str] = CHAT_KEYS - {
    "response_format",
    "tools",
    "tool_choice",
    "logprobs",
    "top_logprobs",
}

#: TGI-native keys an engine's ``parameters`` or ``Config.extensions`` may set for ``/generate``.
#: ``best_of`` is DSPy's ``n`` (DSPy fans out itself); ``details`` is always on (finish reasons).
GENERATE_PARAMETERS: frozenset[str] = GENERATE_KEYS - {
    "best_of",
    "details",
    "decoder_input_details",
    "top_n_tokens",
    "return_full_text",
}

_MAX_TOKEN_ALIASES = names_of("max_new_tokens")

# TGI reports end of sequence as "eos_token" (generate, and chat before 2.3) and a stop string
# as "stop_sequence"; lm15 knows only OpenAI's vocabulary.
_FINISH_REASONS: dict[str, str] = {
    "stop": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_call",
    "content_filter": "content_filter",
}


def _unsupported(feature: str, message: str, provider: str = PROVIDER) -> Exception:
    error: Exception = lm15.UnsupportedFeatureError(
        f"{message} ({feature})", feature=feature, provider=provider
    )
    return error


# ---- request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireRequest:
    """A TGI call ready to send: the route, the JSON body and what differs from the request.

    Attributes:
        path: ``/v1/chat/completions`` or ``/generate`` (``/generate_stream`` when streaming).
        body: the JSON body.
        adaptations: lm15 ``Adaptation`` records for what the wire got that differs from what
            was asked (e.g. greedy decoding sent explicitly), shown in DSPy's history.
    """

    path: str
    body: dict[str, Any]
    adaptations: tuple[Any, ...] = ()


def _text_of(part: Any, where: str) -> str:
    if isinstance(part, lm15.TextPart):
        return str(part.text)
    raise _unsupported(
        f"{where}.{part.type}",
        f"TGI's text prompts carry text only, not a {part.type} part in {where}; send text, or "
        "use endpoint='chat' with a vision model for images",
    )


def _chunk(part: Any, where: str) -> dict[str, Any]:
    if isinstance(part, lm15.TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, lm15.ImagePart):
        if part.url is not None:
            url = part.url
        elif part.data is not None:
            url = f"data:{part.media_type};base64,{part.data}"
        else:
            raise _unsupported(
                f"{where}.image",
                "TGI reads images by URL or inline data only, not by file id or local path; "
                "pass the image as a URL or as base64 data",
            )
        return {"type": "image_url", "image_url": {"url": url}}
    hint = {
        "thinking": "TGI has no reasoning parts; leave them out of the history",
        "tool_call": "TGI's Messages API has no tool_call_id, so a tool conversation cannot be "
        "replayed; use DSPy's text tool calling (ChatAdapter's default)",
        "tool_result": "TGI's Messages API has no tool_call_id, so a tool conversation cannot be "
        "replayed; use DSPy's text tool calling (ChatAdapter's default)",
    }.get(part.type, "send text (or images, for a vision model) instead")
    raise _unsupported(f"{where}.{part.type}", f"TGI cannot take a {part.type} part: {hint}")


def _content(parts: Sequence[Any], where: str) -> str | list[dict[str, Any]]:
    chunks = [_chunk(part, where) for part in parts]
    if len(chunks) == 1 and chunks[0]["type"] == "text":
        return str(chunks[0]["text"])  # the plain string form every TGI version reads
    return chunks


def _chat_messages(request: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = request.system
    if system is not None:
        content = system if isinstance(system, str) else _content(system, "system")
        messages.append({"role": "system", "content": content})
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role == "tool":
            raise _unsupported(
                f"{where}.tool",
                "TGI's Messages API has no tool_call_id, so tool results cannot be replayed; use "
                "DSPy's text tool calling (ChatAdapter's default)",
            )
        # TGI's chat templates know system/user/assistant; a developer message is a system one.
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": _content(message.parts, where)})
    return messages


def default_prompt(request: Any) -> str:
    """The ``/generate`` prompt for a canonical request, rendered as DSPy 3.4 renders text models.

    The system prompt and each message's text, separated by blank lines, then ``BEGIN RESPONSE:``
    (what ``dspy.LM(model_type="text")`` sends to a completions API).

    Example:
        >>> from dspy.lm15 import Message, Request
        >>> default_prompt(Request(model="m", system="Be brief.", messages=(Message.user("Hi"),)))
        'Be brief.\\n\\nHi\\n\\nBEGIN RESPONSE:'
    """
    blocks: list[str] = []
    system = request.system
    if system is not None:
        blocks.append(
            system if isinstance(system, str) else "".join(_text_of(p, "system") for p in system)
        )
    for i, message in enumerate(request.messages):
        if message.role == "tool":
            raise _unsupported(
                f"messages[{i}].tool", "a /generate prompt cannot carry tool results"
            )
        blocks.append("".join(_text_of(p, f"messages[{i}]") for p in message.parts))
    blocks.append("BEGIN RESPONSE:")
    return "\n\n".join(blocks)


def _schema_grammar(response_format: Mapping[str, Any]) -> tuple[dict[str, Any], Any | None]:
    """lm15's ``response_format`` -> TGI's ``{"type": "json", "value": <schema>}``."""
    if response_format.get("type") == "json_schema":
        return {"type": "json", "value": dict(response_format["schema"])}, None
    # "any JSON object": TGI's grammar always needs a schema, and {"type": "object"} is exactly
    # the set of JSON objects.
    note = lm15.Adaptation(
        field="config.response_format",
        action="substituted",
        reason="TGI constrains output with a JSON schema; 'any JSON object' is sent as the "
        'schema {"type": "object"}',
        asked={"type": "json_object"},
        applied={"type": "json", "value": {"type": "object"}},
    )
    return {"type": "json", "value": {"type": "object"}}, note


def _refuse_unsupported_config(config: Any, endpoint: Endpoint, streaming: bool) -> None:
    what = {
        "reasoning": "TGI has no reasoning-effort control; drop reasoning",
        "cache": "TGI has no provider-side prompt cache to configure; drop prompt_cache",
        "service_tier": "TGI has no service tiers; drop service_tier",
        "user_id": "TGI takes no end-user id; drop user",
        "store": "TGI stores nothing; drop store",
        "probabilities": "TGI cannot measure distributions over JSON keys; drop probabilities",
    }
    for name, hint in what.items():
        if getattr(config, name, None) is not None:
            raise _unsupported(f"config.{name}", hint)
    if config.top_k is not None and endpoint == "chat":
        raise _unsupported(
            "config.top_k",
            "TGI's Messages API has no top_k; use TGIEngine(endpoint='generate') or drop top_k",
        )
    if config.presence_penalty is not None and endpoint == "generate":
        raise _unsupported(
            "config.presence_penalty",
            "TGI's /generate has no presence_penalty; use endpoint='chat' or pass "
            "repetition_penalty in TGIEngine(parameters=...)",
        )
    if config.logprobs is not None:
        if streaming:
            raise _unsupported(
                "config.logprobs", "logprobs are not read from TGI streams; stream=False"
            )
        if config.logprobs and endpoint == "generate":
            raise _unsupported(
                "config.logprobs",
                "top alternatives are not read from /generate; ask for logprobs=0 (chosen "
                "tokens) or use endpoint='chat'",
            )
    if config.tool_choice is not None and endpoint == "generate":
        raise _unsupported("config.tool_choice", "/generate takes no tools; use endpoint='chat'")


def _extensions(config: Any, allowed: frozenset[str], endpoint: Endpoint) -> dict[str, Any]:
    extensions = dict(config.extensions or {})
    unknown = sorted(set(extensions) - allowed)
    if unknown:
        raise _unsupported(
            f"config.extensions.{unknown[0]}",
            f"TGI's {endpoint} route does not take {unknown}; TGI-native keys it takes are "
            f"{sorted(allowed)}",
        )
    return extensions


def _tools(request: Any) -> list[dict[str, Any]] | None:
    if not request.tools:
        return None
    tools = []
    for tool in request.tools:
        if not isinstance(tool, lm15.FunctionTool):
            raise _unsupported(
                f"tools.{tool.name}", "TGI runs function tools only, not provider built-ins"
            )
        function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
        if tool.description:
            function["description"] = tool.description
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(choice: Any) -> Any:
    if choice.parallel is not None:
        raise _unsupported(
            "config.tool_choice.parallel", "TGI has no parallel_tool_calls switch; drop it"
        )
    if len(choice.allowed) > 1:
        raise _unsupported(
            "config.tool_choice.allowed",
            "TGI can force one named tool, not a subset; allow one tool or use mode='auto'",
        )
    if choice.allowed and choice.mode != "none":
        return {"type": "function", "function": {"name": choice.allowed[0]}}
    return choice.mode


def build_wire_request(
    request: Any,
    *,
    endpoint: Endpoint = "chat",
    parameters: Mapping[str, Any] | None = None,
    adapter_id: str | None = None,
    info: ServerInfo | None = None,
    stream: bool = False,
    prompt_format: PromptFormat | None = None,
) -> WireRequest:
    """Map a ``dspy.lm15.Request`` onto a TGI request body.

    ``Config`` fields map as: ``max_tokens`` -> ``max_tokens`` / ``max_new_tokens``;
    ``temperature`` (``None`` or 0 = greedy, sent explicitly because TGI samples otherwise),
    ``top_p``, ``seed``, ``stop``, ``frequency_penalty``; ``presence_penalty`` (chat);
    ``top_k`` (``/generate`` only: TGI's Messages API has none); ``response_format`` -> TGI
    grammar ``{"type": "json", "value": <schema>}``; ``logprobs``; ``tool_choice`` with
    ``Request.tools`` (chat). ``Config.extensions`` and ``parameters`` may set TGI-native keys
    (:data:`CHAT_PARAMETERS` / :data:`GENERATE_PARAMETERS`: ``grammar``, ``adapter_id``,
    ``repetition_penalty``, ...); the request's values win over ``parameters``.

    Args:
        request: the canonical request.
        endpoint: ``"chat"`` (``/v1/chat/completions``) or ``"generate"`` (``/generate``).
        parameters: TGI-native defaults for every request.
        adapter_id: a LoRA adapter to use (TGI >= 2.1).
        info: the server's ``/info``, to enforce its limits and version.
        stream: build the streaming variant.
        prompt_format: renders the ``/generate`` prompt (default :func:`default_prompt`).

    Raises:
        lm15.UnsupportedFeatureError: something TGI cannot carry (the message names the fix).
        lm15.InvalidRequestError: a value TGI would reject (e.g. ``top_p=1.5``).

    Example:
        >>> from dspy.lm15 import Config, Message, Request
        >>> req = Request(model="tgi/m", messages=(Message.user("Hi"),),
        ...               config=Config(max_tokens=8, response_format={"type": "json_schema",
        ...                             "schema": {"type": "object"}}))
        >>> build_wire_request(req).body
        {'model': 'tgi', 'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 8, \
'temperature': 0.0, 'response_format': {'type': 'json', 'value': {'type': 'object'}}}
    """
    config = request.config
    _refuse_unsupported_config(config, endpoint, stream)
    allowed = CHAT_PARAMETERS if endpoint == "chat" else GENERATE_PARAMETERS
    kwargs: dict[str, Any] = dict(parameters or {})
    if adapter_id is not None:
        kwargs["adapter_id"] = adapter_id
    kwargs.update(_extensions(config, allowed, endpoint))
    adaptations: list[Any] = []

    if config.max_tokens is not None:
        for alias in _MAX_TOKEN_ALIASES:
            kwargs.pop(alias, None)
        kwargs["max_tokens"] = config.max_tokens
    for name in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty"):
        value = getattr(config, name)
        if value is not None:
            kwargs[name] = value
    if config.top_k is not None:
        kwargs["top_k"] = config.top_k
    if config.stop:
        kwargs["stop"] = list(config.stop)
    if kwargs.get("temperature") is None:
        adaptations.append(
            lm15.Adaptation(
                field="config.temperature",
                action="defaulted",
                reason="TGI samples when no temperature is sent; greedy decoding is sent "
                "explicitly",
                applied=0.0,
            )
        )
    if not kwargs.get("temperature") and kwargs.get("top_p") is not None:
        adaptations.append(
            lm15.Adaptation(
                field="config.top_p",
                action="dropped",
                reason="greedy decoding has no nucleus to cut; TGI would turn sampling on",
                asked=kwargs["top_p"],
            )
        )
    if config.response_format is not None:
        grammar, note = _schema_grammar(config.response_format)
        kwargs.pop("grammar", None)
        kwargs["response_format" if endpoint == "chat" else "grammar"] = grammar
        if note is not None:
            adaptations.append(note)

    try:
        if endpoint == "generate":
            if request.tools:
                raise _unsupported("tools", "/generate takes no tools; use endpoint='chat'")
            kwargs["details"] = True  # finish reasons and token counts come only with details
            prompt = (prompt_format or default_prompt)(request)
            body = build_generate_request(prompt, kwargs, info=info, stream=stream)
            path = "/generate_stream" if stream else GENERATE_PATH
        else:
            if config.logprobs is not None:
                kwargs["logprobs"] = True
                if config.logprobs:
                    kwargs["top_logprobs"] = config.logprobs
            tools = _tools(request)
            if tools is not None:
                if stream:
                    raise _unsupported(
                        "tools", "tool calls are not read from TGI streams; stream=False"
                    )
                kwargs["tools"] = tools
            if config.tool_choice is not None:
                kwargs["tool_choice"] = _tool_choice(config.tool_choice)
            body = build_chat_request(_chat_messages(request), kwargs, info=info, stream=stream)
            path = CHAT_PATH
    except ConfigError as exc:
        raise to_lm15_error(exc) from exc
    return WireRequest(path, body, tuple(adaptations))


# ---- response --------------------------------------------------------------------------------


def _finish(raw: str | None, *, tool_call: bool = False) -> str:
    if tool_call:
        return "tool_call"
    if raw is None:
        return "stop"
    return _FINISH_REASONS.get(raw, "stop")


def _usage(raw: Mapping[str, int] | None) -> Any:
    if not raw:
        return lm15.Usage()
    return lm15.Usage(
        input_tokens=raw.get("prompt_tokens"),
        output_tokens=raw.get("completion_tokens"),
        total_tokens=raw.get("total_tokens"),
        cache_read_tokens=raw.get("cached_tokens"),  # vLLM/SGLang prefix-cache hits
    )


def _tool_call_part(call: Mapping[str, Any], index: int) -> Any:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise MalformedResponseError(
                f"tool call arguments are not JSON: {arguments[:200]!r}"
            ) from exc
    if not isinstance(arguments, dict):
        raise MalformedResponseError(f"tool call arguments must be an object, got {arguments!r}")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedResponseError(f"tool call without a function name: {call!r}")
    call_id = call.get("id")
    return lm15.ToolCallPart(
        id=str(call_id) if call_id not in (None, "") else f"call_{index}",
        name=name,
        input=arguments,
    )


def _chat_logprobs(data: Mapping[str, Any]) -> tuple[Any, ...] | None:
    try:
        content = data["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(content, list):
        return None
    out = []
    for item in content:
        top = tuple(
            lm15.TopLogprob(token=str(t["token"]), logprob=float(t["logprob"]))
            for t in item.get("top_logprobs") or ()
        )
        out.append(
            lm15.TokenLogprob(token=str(item["token"]), logprob=float(item["logprob"]), top=top)
        )
    return tuple(out)


def _provider_data(replica: str | None, endpoint: str, finish_reason: str | None) -> dict[str, Any]:
    tgi: dict[str, Any] = {"endpoint": endpoint}
    if replica is not None:
        tgi["replica"] = replica  # which replica answered: routing is visible in DSPy's history
    if finish_reason is not None:
        tgi["finish_reason"] = finish_reason  # TGI's own word, before mapping
    return {"tgi": tgi}


def chat_response(
    data: Mapping[str, Any] | bytes | str,
    *,
    request: Any,
    replica: str | None = None,
    adaptations: Sequence[Any] = (),
) -> Any:
    """A ``/v1/chat/completions`` body -> ``dspy.lm15.Response``.

    Raises:
        MalformedResponseError: the body is not a chat completion (tgispy's error: the client
            retries it on another replica).
        TGIError: the body is a TGI error payload.

    Example:
        >>> from dspy.lm15 import Message, Request
        >>> req = Request(model="tgi/m", messages=(Message.user("Hi"),))
        >>> r = chat_response({"choices": [{"message": {"role": "assistant", "content": "Hello"},
        ...     "finish_reason": "eos_token"}], "usage": {"prompt_tokens": 3,
        ...     "completion_tokens": 2, "total_tokens": 5}}, request=req)
        >>> r.text, r.finish_reason, r.usage.total_tokens
        ('Hello', 'stop', 5)
    """
    if isinstance(data, (bytes, str)):
        raw = data
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MalformedResponseError(f"chat response is not JSON: {raw[:200]!r}") from exc
    chat = parse_chat_response(data, replica=replica)
    assert isinstance(data, Mapping)  # parse_chat_response accepts only a JSON object
    parts: list[Any] = []
    if chat.content or not chat.tool_calls:
        parts.append(lm15.TextPart(chat.content or ""))
    try:
        parts.extend(_tool_call_part(call, i) for i, call in enumerate(chat.tool_calls))
        logprobs = _chat_logprobs(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedResponseError(f"malformed chat response: {exc}", replica=replica) from exc
    response_id = data.get("id")
    return lm15.Response(
        id=str(response_id) if response_id else None,
        model=chat.model or request.model,
        message=lm15.Message(role="assistant", parts=tuple(parts)),
        finish_reason=_finish(chat.finish_reason, tool_call=bool(chat.tool_calls)),
        usage=_usage(chat.usage),
        logprobs=logprobs,
        provider_data=_provider_data(replica, CHAT_PATH, chat.finish_reason),
        adaptations=tuple(adaptations),
    )


def generate_response(
    generated: GenerateResponse,
    *,
    request: Any,
    usage: Mapping[str, int] | None = None,
    model: str | None = None,
    replica: str | None = None,
    logprobs: bool = False,
    adaptations: Sequence[Any] = (),
) -> Any:
    """A parsed ``/generate`` result (and its usage headers) -> ``dspy.lm15.Response``.

    Example:
        >>> from dspy.lm15 import Message, Request
        >>> from tgispy.tgi import parse_generate_response
        >>> req = Request(model="tgi/m", messages=(Message.user("Hi"),))
        >>> gen = parse_generate_response('{"generated_text": " Hello", "details": '
        ...     '{"finish_reason": "eos_token", "generated_tokens": 2, "seed": null}}')
        >>> generate_response(gen, request=req).finish_reason
        'stop'
    """
    best = generated.sequences[0]
    if usage is None and best.generated_tokens is not None:
        usage = {"completion_tokens": best.generated_tokens}
    token_logprobs = None
    if logprobs:
        token_logprobs = tuple(
            lm15.TokenLogprob(token=t.text, logprob=t.logprob, token_id=t.id)
            for t in best.tokens
            if t.logprob is not None and not t.special
        )
    return lm15.Response(
        id=None,
        model=model or request.model,
        message=lm15.Message.assistant(best.text),
        finish_reason=_finish(best.finish_reason),
        usage=_usage(usage),
        logprobs=token_logprobs,
        provider_data=_provider_data(replica, GENERATE_PATH, best.finish_reason),
        adaptations=tuple(adaptations),
    )


# ---- streams ---------------------------------------------------------------------------------


class ChatStreamMapper:
    """Turn ``/v1/chat/completions`` stream chunks into lm15 stream events.

    ``start`` is sent with the first chunk (so a request that fails before any byte can still be
    retried by DSPy); ``end`` when the stream is done, carrying the finish reason and the usage
    chunk TGI sends last.

    Example:
        >>> from tgispy.tgi import parse_chat_chunk
        >>> m = ChatStreamMapper(model="tgi/m")
        >>> [e.type for e in m.feed(parse_chat_chunk('{"choices":[{"delta":{"content":"Hi"},'
        ...     '"finish_reason":"stop"}]}'))] + [e.type for e in m.finish()]
        ['start', 'delta', 'end']
    """

    def __init__(self, *, model: str, adaptations: Sequence[Any] = ()) -> None:
        self.model = model
        self.adaptations = tuple(adaptations)
        self.started = False
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None

    def _start(self) -> list[Any]:
        if self.started:
            return []
        self.started = True
        return [lm15.StreamStartEvent(model=self.model, adaptations=self.adaptations)]

    def feed(self, chunk: ChatChunk) -> list[Any]:
        """Events for one chunk."""
        if chunk.tool_calls:
            raise _unsupported("tools", "tool calls are not read from TGI streams; stream=False")
        events = self._start()
        if chunk.content:
            events.append(lm15.StreamDeltaEvent(lm15.TextDelta(chunk.content)))
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        return events

    def finish(self) -> list[Any]:
        """The closing events, once the server said ``[DONE]``."""
        if self.finish_reason is None:
            raise MalformedResponseError("the chat stream ended without a finish_reason")
        return [
            *self._start(),
            lm15.StreamEndEvent(
                finish_reason=_finish(self.finish_reason),
                usage=_usage(self.usage),
                provider_data=_provider_data(None, CHAT_PATH, self.finish_reason),
            ),
        ]


class GenerateStreamMapper:
    """Turn ``/generate_stream`` events into lm15 stream events.

    Example:
        >>> from tgispy.tgi import parse_stream_event
        >>> m = GenerateStreamMapper(model="tgi/m")
        >>> ev = parse_stream_event('{"token":{"id":1,"text":"Hi","logprob":-0.1,'
        ...     '"special":false},"generated_text":"Hi","details":{"finish_reason":"length",'
        ...     '"generated_tokens":1,"seed":null}}')
        >>> [e.type for e in m.feed(ev)]
        ['start', 'delta', 'end']
    """

    def __init__(self, *, model: str, adaptations: Sequence[Any] = ()) -> None:
        self.model = model
        self.adaptations = tuple(adaptations)
        self.started = False
        self.ended = False

    def feed(self, event: StreamEvent) -> list[Any]:
        """Events for one TGI stream event."""
        events: list[Any] = []
        if not self.started:
            self.started = True
            events.append(lm15.StreamStartEvent(model=self.model, adaptations=self.adaptations))
        token = event.token
        if token is not None and not token.special and token.text:
            events.append(lm15.StreamDeltaEvent(lm15.TextDelta(token.text)))
        if event.is_final:
            self.ended = True
            details = event.details
            raw = details.finish_reason if details is not None else None
            usage: dict[str, int] | None = None
            if details is not None and details.generated_tokens is not None:
                usage = {"completion_tokens": details.generated_tokens}
                if details.input_length is not None:
                    usage["prompt_tokens"] = details.input_length
                    usage["total_tokens"] = details.input_length + details.generated_tokens
            events.append(
                lm15.StreamEndEvent(
                    finish_reason=_finish(raw),
                    usage=_usage(usage),
                    provider_data=_provider_data(None, "/generate_stream", raw),
                )
            )
        return events


# ---- errors ----------------------------------------------------------------------------------


def _root(error: TGIError) -> TGIError:
    # AllReplicasFailedError summarises a chain of attempts; its last attempt says what kind of
    # failure it was.
    cause = error.__cause__
    if isinstance(error, AllReplicasFailedError) and isinstance(cause, TGIError):
        return _root(cause)
    return error


def _lm15_class(error: TGIError) -> Any:
    mapping: tuple[tuple[type[TGIError], Any], ...] = (
        (ContextWindowExceededError, lm15.ContextLengthError),
        (ValidationError, lm15.InvalidRequestError),
        (OverloadedError, lm15.RateLimitError),
        (TGITimeoutError, lm15.TimeoutError),
        (TransportError, lm15.TransportError),
        (NoHealthyReplicaError, lm15.TransportError),
        (UnavailableError, lm15.ServerError),
        (IncompleteGenerationError, lm15.ServerError),
        (GenerationError, lm15.ServerError),
        (MalformedResponseError, lm15.ServerError),
        (ServerError, lm15.ServerError),
    )
    for source, target in mapping:
        if isinstance(error, source):
            if source is ServerError and error.status is not None and error.status < 500:
                # "any other status", e.g. 401/403/404 from a proxy in front of TGI: not a
                # server fault, and retrying cannot help
                return lm15.AuthError if error.status in (401, 403) else lm15.ProviderError
            return target
    return lm15.ProviderError


def to_lm15_error(error: BaseException, *, provider: str = PROVIDER) -> Exception:
    """Translate a tgispy error into the lm15 error DSPy 3.4 expects from an engine.

    DSPy decides retries from the class: 429 -> ``RateLimitError`` (with ``retry_after``),
    timeouts -> ``TimeoutError``, connection failures and "no healthy replica" ->
    ``TransportError``, 5xx / malformed bodies -> ``ServerError`` are retryable; 422 ->
    ``InvalidRequestError`` / ``ContextLengthError`` and client-side refusals are not. The
    message keeps tgispy's text (which never holds secrets); raise it ``from`` the original.

    Example:
        >>> from tgispy.errors import OverloadedError
        >>> err = to_lm15_error(OverloadedError("Model is overloaded", status=429,
        ...                                     retry_after=2.0))
        >>> type(err).__name__, err.retry_after
        ('RateLimitError', 2.0)
    """
    if isinstance(error, lm15.LM15Error):
        already: Exception = error
        return already
    if isinstance(error, ConfigError):
        invalid: Exception = lm15.InvalidRequestError(str(error), provider=provider)
        return invalid
    if not isinstance(error, TGIError):
        return error if isinstance(error, Exception) else RuntimeError(str(error))
    root = _root(error)
    cls = _lm15_class(root)
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status": error.status if error.status is not None else root.status,
        "retry_after": error.retry_after if error.retry_after is not None else root.retry_after,
    }
    if root.error_type:
        kwargs["provider_code"] = root.error_type
    mapped: Exception = cls(str(error), **kwargs)
    return mapped


# ---- other engines: lm15 <-> tgispy.engines' neutral request and result ------------------------
#
# vLLM, SGLang, llama.cpp, Ollama and generic OpenAI-compatible servers are reached through their
# dialects (tgispy.engines): this part only maps lm15 values onto the dialects' neutral Request
# and their Result / Delta values back onto lm15. Every engine fact (field names, "off" values,
# constraint keys, error shapes) stays in the dialect.

#: the neutral request's own keys: an engine's ``parameters`` or ``Config.extensions`` may not set
#: them (the model is the engine's ``served_model``; n and streaming belong to DSPy)
DIALECT_RESERVED: frozenset[str] = frozenset(
    {"model", "messages", "prompt", "n", "stream", "stream_options", "best_of"}
)

#: DSPy model-name prefixes that name a provider, not the served model ("hosted_vllm/llama3")
_PROVIDER_PREFIXES = frozenset(
    {
        "openai", "hosted_vllm", "vllm", "sglang", "llamacpp", "llama_cpp", "llama.cpp",
        "ollama", "ollama_chat", "tgi", "huggingface", "text-completion-openai", "local",
    }
)  # fmt: skip


def served_model(model: str) -> str:
    """The model id to send for DSPy's model name: a leading provider prefix is dropped.

    Example:
        >>> served_model("hosted_vllm/meta-llama/Llama-3.1-8B"), served_model("llama3.2")
        ('meta-llama/Llama-3.1-8B', 'llama3.2')
    """
    provider, sep, rest = model.partition("/")
    return rest if sep and rest and provider in _PROVIDER_PREFIXES else model


def _dialect_parts(parts: Sequence[Any], where: str, engine: str, *, text_only: bool) -> Any:
    for part in parts:
        if part.type in ("thinking", "tool_call", "tool_result"):
            raise _unsupported(
                f"{where}.{part.type}",
                f"tgispy sends {engine} text (and images) only, not {part.type} parts; use "
                "DSPy's text tool calling (ChatAdapter's default) and leave reasoning out of the "
                "history",
                engine,
            )
    if text_only:
        texts = []
        for part in parts:
            if not isinstance(part, lm15.TextPart):
                raise _unsupported(
                    f"{where}.{part.type}",
                    f"{engine} takes text messages here, not a {part.type} part; send text",
                    engine,
                )
            texts.append(str(part.text))
        return "".join(texts)
    return _content(parts, where)


def _dialect_messages(request: Any, engine: str) -> list[dict[str, Any]]:
    # Ollama's native /api/chat takes string contents (images go in a separate field)
    text_only = engine == "ollama"
    messages: list[dict[str, Any]] = []
    system = request.system
    if system is not None:
        content = (
            system
            if isinstance(system, str)
            else _dialect_parts(system, "system", engine, text_only=text_only)
        )
        messages.append({"role": "system", "content": content})
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role == "tool":
            raise _unsupported(
                f"{where}.tool",
                f"tgispy does not replay tool results to {engine}; use DSPy's text tool calling "
                "(ChatAdapter's default)",
                engine,
            )
        role = "system" if message.role == "developer" else message.role
        content = _dialect_parts(message.parts, where, engine, text_only=text_only)
        messages.append({"role": role, "content": content})
    return messages


def _dialect_constraint(
    response_format: Mapping[str, Any], engine: str, kinds: frozenset[str]
) -> Constraint:
    if "json" not in kinds:
        raise _unsupported(
            "config.response_format",
            f"{engine} cannot constrain output to JSON; drop response_format (DSPy's ChatAdapter "
            "parses unconstrained output)",
            engine,
        )
    if response_format.get("type") == "json_schema":
        return Constraint("json", dict(response_format["schema"]))
    return Constraint("json", {"type": "object"})  # "any JSON object"


def _refuse_for_dialect(request: Any, engine: str) -> None:
    config = request.config
    what = {
        "reasoning": "no reasoning-effort control is sent; drop reasoning",
        "cache": "no provider-side prompt cache is configured; drop prompt_cache",
        "service_tier": "no service tiers; drop service_tier",
        "user_id": "no end-user id is sent; drop user",
        "store": "nothing is stored; drop store",
        "probabilities": "no distributions over JSON keys are measured; drop probabilities",
        "logprobs": "log probabilities are not read from this engine; drop logprobs",
        "tool_choice": "tools are not sent to this engine; use DSPy's text tool calling",
    }
    for name, hint in what.items():
        if getattr(config, name, None) is not None:
            raise _unsupported(f"config.{name}", f"{engine}: {hint}", engine)
    if request.tools:
        raise _unsupported(
            "tools",
            f"{engine}: tools are not sent; DSPy's adapters fall back to text tool calling "
            "(the engine declares supports_function_calling=False)",
            engine,
        )


def dialect_request(
    request: Any,
    *,
    engine: str,
    constraint_kinds: frozenset[str],
    model: str | None = None,
    endpoint: Endpoint = "chat",
    parameters: Mapping[str, Any] | None = None,
    stream: bool = False,
    prompt_format: PromptFormat | None = None,
) -> EngineRequest:
    """Map a ``dspy.lm15.Request`` onto a :class:`tgispy.engines.Request` for ``engine``.

    ``Config`` fields map one to one (``max_tokens``, ``temperature`` -- ``None`` or 0 is greedy
    on every dialect --, ``top_p``, ``top_k``, ``stop``, ``seed``, the penalties);
    ``response_format`` becomes a JSON constraint, which the dialect sends in its engine's
    words. ``parameters`` (engine defaults) and ``Config.extensions`` (the request's own, which
    win) go to the engine as they are (``min_p``, ``repetition_penalty``, ``num_ctx``...).

    Args:
        request: the canonical request.
        engine: the dialect's name (for error messages).
        constraint_kinds: the constraint kinds the dialect can enforce.
        model: the served model id (default: DSPy's name without its provider prefix).
        endpoint: ``"chat"`` (messages) or ``"generate"`` (a text prompt, the completions route).
        parameters: engine-native defaults for every request.
        stream: build the streaming variant.
        prompt_format: renders the text prompt for ``endpoint="generate"``.

    Raises:
        lm15.UnsupportedFeatureError: something tgispy does not send to this engine (the message
            names the fix).

    Example:
        >>> from dspy.lm15 import Config, Message, Request
        >>> req = Request(model="hosted_vllm/m", messages=(Message.user("Hi"),),
        ...               config=Config(max_tokens=8, stop=("\\n",)))
        >>> neutral = dialect_request(req, engine="vllm", constraint_kinds=frozenset({"json"}))
        >>> neutral.model, neutral.max_tokens, neutral.stop, neutral.messages
        ('m', 8, ('\\n',), ({'role': 'user', 'content': 'Hi'},))
    """
    _refuse_for_dialect(request, engine)
    config = request.config
    extra: dict[str, Any] = dict(parameters or {})
    extensions = dict(config.extensions or {})
    reserved = sorted(set(extensions) & DIALECT_RESERVED)
    if reserved:
        raise _unsupported(
            f"config.extensions.{reserved[0]}",
            f"{reserved} are set by the engine and DSPy, not by extensions",
            engine,
        )
    extra.update(extensions)
    constraint = None
    if config.response_format is not None:
        constraint = _dialect_constraint(config.response_format, engine, constraint_kinds)
    messages: tuple[dict[str, Any], ...] | None = None
    prompt: str | None = None
    if endpoint == "generate":
        prompt = (prompt_format or default_prompt)(request)
    else:
        messages = tuple(_dialect_messages(request, engine))
    try:
        return EngineRequest(
            model=model if model is not None else served_model(request.model),
            prompt=prompt,
            messages=messages,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            stop=tuple(config.stop),
            seed=config.seed,
            frequency_penalty=config.frequency_penalty,
            presence_penalty=config.presence_penalty,
            constraint=constraint,
            stream=stream,
            extra=extra,
        )
    except ConfigError as exc:
        raise to_lm15_error(exc, provider=engine) from exc


def check_constraint(neutral: EngineRequest, result: Result, *, engine: str, replica: str) -> None:
    """Refuse an answer that ignores the JSON constraint it was sent (an engine or proxy that
    drops the constraint silently must not go unnoticed); a truncated answer is let through.

    Raises:
        MalformedResponseError: the text is not JSON (retried on another replica).
    """
    if neutral.constraint is None or neutral.constraint.kind != "json":
        return
    for choice in result.choices:
        if choice.finish_reason == "length":
            continue
        try:
            json.loads(choice.text)
        except ValueError:
            raise MalformedResponseError(
                f"{engine} was sent a JSON-schema constraint but answered non-JSON text "
                f"{choice.text[:120]!r}: the server ignored the constraint (check its version "
                "and structured-output backend, or drop response_format)",
                replica=replica,
            ) from None


def _dialect_provider_data(
    engine: str, replica: str | None, path: str, finish_reason: str | None, **more: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {"engine": engine, "endpoint": path}
    if replica is not None:
        data["replica"] = replica
    if finish_reason is not None:
        data["finish_reason"] = finish_reason
    data.update({k: v for k, v in more.items() if v is not None})
    return {engine: data}


def dialect_response(
    result: Result,
    *,
    request: Any,
    engine: str,
    path: str,
    replica: str | None = None,
    adaptations: Sequence[Any] = (),
) -> Any:
    """A dialect's :class:`~tgispy.engines.Result` (one choice) -> ``dspy.lm15.Response``.

    ``provider_data[engine]`` says which replica answered, the route, the engine's finish
    reason and the stop string it matched (cut from the text, as DSPy expects).

    Example:
        >>> from dspy.lm15 import Message, Request
        >>> from tgispy.engines import Choice, Result
        >>> req = Request(model="m", messages=(Message.user("Hi"),))
        >>> r = dialect_response(Result((Choice("Hello", "length"),), {"prompt_tokens": 3,
        ...     "completion_tokens": 2, "total_tokens": 5}), request=req, engine="vllm",
        ...     path="/v1/chat/completions")
        >>> r.text, r.finish_reason, r.usage.total_tokens
        ('Hello', 'length', 5)
    """
    if not result.choices:
        raise MalformedResponseError(f"{engine} answered without choices", replica=replica)
    choice = result.choices[0]
    return lm15.Response(
        id=None,
        model=result.model or request.model,
        message=lm15.Message.assistant(choice.text),
        finish_reason=_finish(choice.finish_reason),
        usage=_usage(result.usage),
        provider_data=_dialect_provider_data(
            engine, replica, path, choice.finish_reason, matched_stop=choice.matched_stop
        ),
        adaptations=tuple(adaptations),
    )


class DialectStreamMapper:
    """Turn a dialect's stream :class:`~tgispy.engines.Delta` values into lm15 stream events.

    ``start`` comes with the first payload, text ``delta`` events for choice 0, and ``end``
    (finish reason, usage) once the stream is done.

    Example:
        >>> from tgispy.engines import Delta
        >>> m = DialectStreamMapper(model="m", engine="ollama", path="/api/chat")
        >>> [e.type for e in m.feed([Delta(text="Hi")])]
        ['start', 'delta']
        >>> [e.type for e in m.feed([Delta(finish_reason="stop", done=True)]) + m.finish()]
        ['end']
    """

    def __init__(
        self, *, model: str, engine: str, path: str, adaptations: Sequence[Any] = ()
    ) -> None:
        self.model = model
        self.engine = engine
        self.path = path
        self.adaptations = tuple(adaptations)
        self.started = False
        self.finish_reason: str | None = None
        self.usage: Mapping[str, int] | None = None

    def _start(self) -> list[Any]:
        if self.started:
            return []
        self.started = True
        return [lm15.StreamStartEvent(model=self.model, adaptations=self.adaptations)]

    def feed(self, deltas: Sequence[Delta]) -> list[Any]:
        """Events for the deltas of one stream payload."""
        events = self._start() if deltas else []
        for delta in deltas:
            if delta.usage is not None:
                self.usage = delta.usage
            if delta.index != 0:
                continue  # DSPy asks one choice per request
            if delta.text:
                events.append(lm15.StreamDeltaEvent(lm15.TextDelta(delta.text)))
            if delta.finish_reason is not None:
                self.finish_reason = delta.finish_reason
        return events

    def finish(self) -> list[Any]:
        """The closing events, once the dialect said the stream is done."""
        return [
            *self._start(),
            lm15.StreamEndEvent(
                finish_reason=_finish(self.finish_reason),
                usage=_usage(self.usage),
                provider_data=_dialect_provider_data(
                    self.engine, None, self.path, self.finish_reason
                ),
            ),
        ]
