"""Parse TGI responses and stream events into small frozen values (pure, I/O-free).

Covers ``POST /generate`` and ``POST /`` (a one-element list), ``/generate_stream`` events,
``/v1/chat/completions`` responses and stream chunks, and the ``x-prompt-tokens`` /
``x-generated-tokens`` headers. Anything that is not a valid TGI shape raises
:class:`~tgispy.errors.MalformedResponseError`; error payloads raise the mapped
:class:`~tgispy.errors.TGIError`.

These functions sit on the hot path, so each decodes JSON once and builds only what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgispy.errors import MalformedResponseError
from tgispy.tgi._errors import error_from_payload, header_value, render_json

__all__ = [
    "ChatChunk",
    "ChatResponse",
    "GenerateResponse",
    "GeneratedSequence",
    "StreamEvent",
    "Token",
    "parse_chat_chunk",
    "parse_chat_response",
    "parse_generate_response",
    "parse_stream_event",
    "usage_from_headers",
]

_JSON_DECODE_TYPES = (bytes, bytearray, memoryview, str)


@dataclass(frozen=True, slots=True)
class Token:
    """One generated (or prefill) token.

    ``logprob`` is ``None`` for the first prefill token (TGI serialises its NaN as ``null``).

    Example:
        >>> Token(id=363, text=" for", logprob=-1.53, special=False).text
        ' for'
    """

    id: int
    text: str
    logprob: float | None
    special: bool


@dataclass(frozen=True, slots=True)
class GeneratedSequence:
    """One generated text with the details TGI sent for it (all ``None`` without ``details``).

    Example:
        >>> seq = GeneratedSequence("hi", tokens=(Token(1, "hi", -0.5, False),))
        >>> seq.logprob
        -0.5
    """

    text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None
    seed: int | None = None
    input_length: int | None = None
    tokens: tuple[Token, ...] = ()
    prefill: tuple[Token, ...] = ()

    @property
    def logprob(self) -> float | None:
        """Sum of the generated tokens' logprobs; ``None`` when TGI sent no token logprobs."""
        total = 0.0
        seen = False
        for token in self.tokens:
            if token.logprob is not None:
                total += token.logprob
                seen = True
        return total if seen else None


@dataclass(frozen=True, slots=True)
class GenerateResponse:
    """A ``/generate`` result: the best sequence first, then ``best_of``'s other sequences.

    Example:
        >>> parse_generate_response(b'{"generated_text": " Paris"}').text
        ' Paris'
    """

    sequences: tuple[GeneratedSequence, ...]

    @property
    def text(self) -> str:
        """The text of the best (top-level) sequence."""
        return self.sequences[0].text


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One ``/generate_stream`` event: a token, or the final event with the whole text.

    Example:
        >>> parse_stream_event('{"index":1,"token":{"id":5,"text":"a","logprob":-0.1,'
        ...     '"special":false},"generated_text":null,"details":null}').token.text
        'a'
    """

    index: int | None
    token: Token | None
    generated_text: str | None
    details: GeneratedSequence | None

    @property
    def is_final(self) -> bool:
        """True for the last event of a stream, which carries ``generated_text``."""
        return self.generated_text is not None


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A ``/v1/chat/completions`` response (its first choice).

    Example:
        >>> parse_chat_response({"choices": [{"message": {"role": "assistant", "content": "Hi"},
        ...     "finish_reason": "stop"}]}).content
        'Hi'
    """

    content: str | None
    finish_reason: str | None
    usage: dict[str, int] | None
    tool_calls: tuple[dict[str, Any], ...]
    model: str | None


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One ``/v1/chat/completions`` stream chunk (its first choice's delta).

    The usage-only chunk (``stream_options.include_usage``) has no content and carries ``usage``.

    Example:
        >>> parse_chat_chunk('{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},'
        ...     '"finish_reason":null}]}').content
        'Hi'
    """

    content: str | None
    finish_reason: str | None
    usage: dict[str, int] | None
    tool_calls: tuple[dict[str, Any], ...]


# ---- shared helpers --------------------------------------------------------------------------


def _snippet(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _decode(body: Any, what: str) -> Any:
    if not isinstance(body, _JSON_DECODE_TYPES):
        return body
    try:
        return json.loads(bytes(body) if isinstance(body, memoryview) else body)
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; deep nesting exhausts the stack.
    except (ValueError, RecursionError) as exc:
        raise MalformedResponseError(f"{what} is not valid JSON: {_snippet(body)!r}") from exc


def _malformed(what: str, data: Any, exc: BaseException | None = None) -> MalformedResponseError:
    err = MalformedResponseError(f"{what}: {_snippet(render_json(data))}")
    err.__cause__ = exc
    return err


def _raise_if_error(data: Mapping[str, Any], replica: str | None) -> None:
    if "error" in data:
        raise error_from_payload(data, replica=replica)


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected an integer, got {value!r}")


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {value!r}")


def _token(raw: Mapping[str, Any]) -> Token:
    token_id = raw["id"]
    text = raw["text"]
    logprob = raw.get("logprob")
    special = raw.get("special", False)
    if (
        not isinstance(token_id, int)
        or not isinstance(text, str)
        or not (logprob is None or isinstance(logprob, (int, float)))
        or not isinstance(special, bool)
    ):
        raise TypeError(f"bad token {raw!r}")
    return Token(token_id, text, None if logprob is None else float(logprob), special)


def _tokens(raw: Any) -> tuple[Token, ...]:
    if not raw:
        return ()
    return tuple(_token(t) for t in raw)


def _sequence(text: str, details: Mapping[str, Any]) -> GeneratedSequence:
    return GeneratedSequence(
        text=text,
        finish_reason=_opt_str(details.get("finish_reason")),
        generated_tokens=_opt_int(details.get("generated_tokens")),
        seed=_opt_int(details.get("seed")),
        input_length=_opt_int(details.get("input_length")),
        tokens=_tokens(details.get("tokens")),
        prefill=_tokens(details.get("prefill")),
    )


def _usage(raw: Any) -> dict[str, int] | None:
    if not isinstance(raw, Mapping):
        return None
    usage = {
        key: raw[key]
        for key in ("prompt_tokens", "completion_tokens", "total_tokens")
        if isinstance(raw.get(key), int) and not isinstance(raw.get(key), bool)
    }
    return usage or None


def _tool_calls(raw: Any) -> tuple[dict[str, Any], ...]:
    if not raw:
        return ()
    if not isinstance(raw, list) or not all(isinstance(call, Mapping) for call in raw):
        raise TypeError(f"tool_calls must be a list of objects, got {raw!r}")
    return tuple(dict(call) for call in raw)


# ---- /generate -------------------------------------------------------------------------------


def parse_generate_response(
    body: bytes | str | Any, *, replica: str | None = None
) -> GenerateResponse:
    """Parse a ``POST /generate`` (or ``POST /``) response body.

    Args:
        body: the raw body (bytes or str, JSON-decoded here) or an already-decoded object. A
            one-element list, as ``POST /`` returns, is accepted.
        replica: set on the error raised for an error payload.

    Returns:
        The best sequence first, then each ``details.best_of_sequences`` entry.

    Raises:
        MalformedResponseError: the body is not a TGI generate response.
        TGIError: the body is a TGI error payload (mapped like an HTTP error).

    Example:
        >>> r = parse_generate_response('[{"generated_text": "ok", "details": '
        ...     '{"finish_reason": "length", "generated_tokens": 1, "seed": null}}]')
        >>> r.text, r.sequences[0].finish_reason
        ('ok', 'length')
    """
    data = _decode(body, "generate response")
    if isinstance(data, list):
        if len(data) != 1:
            raise _malformed(f"expected one generate response, got a list of {len(data)}", data[:2])
        data = data[0]
    if not isinstance(data, dict):
        raise _malformed("generate response must be a JSON object", data)
    text = data.get("generated_text")
    if not isinstance(text, str):
        _raise_if_error(data, replica)
        raise _malformed("generate response has no 'generated_text' string", data)
    details = data.get("details")
    if details is None:
        return GenerateResponse((GeneratedSequence(text),))
    try:
        best = _sequence(text, details)
        others = details.get("best_of_sequences")
        if not others:
            return GenerateResponse((best,))
        return GenerateResponse(
            (best, *(_sequence(_text(seq), seq) for seq in others)),
        )
    except (AttributeError, KeyError, TypeError) as exc:
        raise _malformed("generate response has malformed details", data, exc) from exc


def _text(seq: Mapping[str, Any]) -> str:
    text = seq["generated_text"]
    if not isinstance(text, str):
        raise TypeError(f"generated_text must be a string, got {text!r}")
    return text


def usage_from_headers(headers: Mapping[str, str]) -> dict[str, int] | None:
    """Token usage from TGI's ``x-prompt-tokens`` / ``x-generated-tokens`` headers (TGI >= 1.4).

    Returns:
        ``{"prompt_tokens", "completion_tokens", "total_tokens"}``, or ``None`` unless both headers
        hold non-negative integers.

    Example:
        >>> usage_from_headers({"x-prompt-tokens": "5", "x-generated-tokens": "10"})
        {'prompt_tokens': 5, 'completion_tokens': 10, 'total_tokens': 15}
    """
    prompt = header_value(headers, "x-prompt-tokens")
    generated = header_value(headers, "x-generated-tokens")
    if prompt is None or generated is None:
        return None
    try:
        prompt_tokens, completion_tokens = int(prompt), int(generated)
    except ValueError:
        return None
    if prompt_tokens < 0 or completion_tokens < 0:
        return None
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


# ---- /generate_stream ------------------------------------------------------------------------


def parse_stream_event(data: str, *, replica: str | None = None) -> StreamEvent:
    """Parse one ``/generate_stream`` ``data:`` payload.

    Raises:
        TGIError: the event is an error event (validation, overload, incomplete stream, ...),
            mapped to its class with ``replica`` set.
        MalformedResponseError: the payload is not a TGI stream event.

    Example:
        >>> e = parse_stream_event('{"index":2,"token":{"id":2,"text":"","logprob":0.0,'
        ...     '"special":true},"generated_text":"Hi","details":{"finish_reason":"eos_token",'
        ...     '"generated_tokens":2,"seed":null}}')
        >>> e.is_final, e.details.finish_reason
        (True, 'eos_token')
    """
    event = _decode(data, "stream event")
    if not isinstance(event, dict):
        raise _malformed("stream event must be a JSON object", event)
    if "error" in event:
        raise error_from_payload(event, replica=replica)
    try:
        raw_token = event.get("token")
        token = _token(raw_token) if raw_token else None
        generated_text = _opt_str(event.get("generated_text"))
        raw_details = event.get("details")
        details = _sequence(generated_text or "", raw_details) if raw_details is not None else None
        index = _opt_int(event.get("index"))
    except (AttributeError, KeyError, TypeError) as exc:
        raise _malformed("malformed stream event", event, exc) from exc
    if token is None and generated_text is None:
        raise _malformed("stream event has neither a token nor generated_text", event)
    return StreamEvent(index, token, generated_text, details)


# ---- /v1/chat/completions --------------------------------------------------------------------


def _chat_object(data: Any, what: str, replica: str | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _malformed(f"{what} must be a JSON object", data)
    if "error" in data and not data.get("choices"):
        raise error_from_payload(data, replica=replica)
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise _malformed(f"{what} has no 'choices' list", data)
    return data


def _finish_reason(value: Any) -> str | None:
    # /v1/completions streams send "" for "not finished"; treat it like chat's null.
    return _opt_str(value) or None


def parse_chat_response(body: bytes | str | Any, *, replica: str | None = None) -> ChatResponse:
    """Parse a ``POST /v1/chat/completions`` response body (its first choice).

    ``replica`` is set on the error raised for an error payload.

    Raises:
        MalformedResponseError: the body is not a chat completion.
        TGIError: the body is an error payload.

    Example:
        >>> r = parse_chat_response(b'{"choices":[{"index":0,"message":{"role":"assistant",'
        ...     b'"content":"4"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,'
        ...     b'"completion_tokens":1,"total_tokens":10},"model":"tgi"}')
        >>> r.content, r.usage["total_tokens"]
        ('4', 10)
    """
    data = _chat_object(_decode(body, "chat response"), "chat response", replica)
    choices = data["choices"]
    if not choices:
        raise _malformed("chat response has no choices", data)
    try:
        choice = choices[0]
        message = choice["message"]
        return ChatResponse(
            content=_opt_str(message.get("content")),
            finish_reason=_finish_reason(choice.get("finish_reason")),
            usage=_usage(data.get("usage")),
            tool_calls=_tool_calls(message.get("tool_calls")),
            model=_opt_str(data.get("model")),
        )
    except (AttributeError, KeyError, TypeError) as exc:
        raise _malformed("malformed chat response", data, exc) from exc


def parse_chat_chunk(data: str, *, replica: str | None = None) -> ChatChunk | None:
    """Parse one ``/v1/chat/completions`` stream ``data:`` payload.

    Returns:
        The chunk, or ``None`` for the ``[DONE]`` sentinel.

    Raises:
        TGIError: an error event, in any of TGI's shapes (``{"error", "error_type"}`` before
            2.4.0, ``{"error": {"message", "http_status_code"}}`` since 2.4.1, OpenAI's
            ``{"error": {"message", "type"}}``), mapped to its class with ``replica`` set.
        MalformedResponseError: the payload is not a chat chunk.

    Example:
        >>> parse_chat_chunk("[DONE]") is None
        True
    """
    if data.strip() == "[DONE]":
        return None
    chunk = _chat_object(_decode(data, "chat stream chunk"), "chat stream chunk", replica)
    try:
        usage = _usage(chunk.get("usage"))
        choices = chunk["choices"]
        if not choices:
            return ChatChunk(None, None, usage, ())
        choice = choices[0]
        delta = choice.get("delta") or {}
        return ChatChunk(
            content=_opt_str(delta.get("content")),
            finish_reason=_finish_reason(choice.get("finish_reason")),
            usage=usage,
            tool_calls=_tool_calls(delta.get("tool_calls")),
        )
    except (AttributeError, KeyError, TypeError) as exc:
        raise _malformed("malformed chat stream chunk", chunk, exc) from exc
