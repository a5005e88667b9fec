"""TGI's response bodies and SSE events, field for field. Pure: no I/O.

Key order follows TGI's serde structs; optional fields that TGI omits (``top_tokens`` when
empty, ``best_of_sequences`` without ``best_of``) are omitted here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from tgispy.server._generation import Generation, Step
from tgispy.server._problems import Problem
from tgispy.server._types import TokenOut

__all__ = [
    "DONE",
    "chat_chunk",
    "chat_completion",
    "chat_usage_chunk",
    "completion",
    "completion_chunk",
    "dumps",
    "generate_response",
    "openai_stream_error",
    "sse",
    "stream_event",
    "tokenize_body",
    "tokenize_response",
]

#: the OpenAI routes' end-of-stream sentinel (TGI >= 2.2)
DONE: Final = b"data: [DONE]\n\n"

_TOKENS_PER_CHUNK: Final = 2048

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """Compact JSON with raw UTF-8, as serde_json writes it."""
    return _encoder.encode(obj).encode()


def sse(payload: bytes) -> bytes:
    """One SSE event in TGI >= 2.1's framing (``data: `` with a space)."""
    return b"data: " + payload + b"\n\n"


def token_json(token: TokenOut) -> dict[str, Any]:
    """A ``Token``."""
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}


def _top_tokens(token: TokenOut) -> list[dict[str, Any]]:
    return [token_json(t) for t in token.top]


def _sequence_fields(gen: Generation, top_n: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "finish_reason": gen.finish_reason,
        "generated_tokens": len(gen.tokens),
        "seed": gen.seed,
        # prefill logprobs are off by default since TGI 3.0 (--enable-prefill-logprobs)
        "prefill": [],
        "tokens": [token_json(t) for t in gen.tokens],
    }
    if top_n:
        fields["top_tokens"] = [_top_tokens(t) for t in gen.tokens]
    return fields


def generate_response(
    generations: list[Generation], *, details: bool, top_n: int, prefix: str
) -> dict[str, Any]:
    """A ``GenerateResponse``; ``generations[0]`` is the answer, the rest ``best_of_sequences``."""
    best = generations[0]
    body: dict[str, Any] = {"generated_text": prefix + best.text}
    if details:
        info = _sequence_fields(best, top_n)
        if len(generations) > 1:
            info["best_of_sequences"] = [
                {"generated_text": prefix + g.text, **_sequence_fields(g, top_n)}
                for g in generations[1:]
            ]
        body["details"] = info
    return body


def stream_event(step: Step, *, details: bool, top_n: int, prefix: str) -> bytes:
    """A ``/generate_stream`` event: a token, or the final one with text and details."""
    event: dict[str, Any] = {"index": step.index, "token": token_json(step.token)}
    if top_n:
        event["top_tokens"] = _top_tokens(step.token)
    final = step.final
    if final is None:
        event["generated_text"] = None
        event["details"] = None
    else:
        event["generated_text"] = prefix + final.text
        event["details"] = (
            {
                "finish_reason": final.finish_reason,
                "generated_tokens": len(final.tokens),
                "seed": final.seed,
                "input_length": final.input_length,
            }
            if details
            else None
        )
    return sse(dumps(event))


def _simple_tokens(
    text: str, pieces: list[tuple[int, bytes]]
) -> Iterator[tuple[int, str, int, int]]:
    """Each token's id, text and character offsets into ``text``."""
    raw = text.encode()
    chars = _CharCount(raw)
    offset = 0
    for token_id, piece in pieces:
        start_byte = raw.find(piece, offset) if piece else offset
        if start_byte < 0:  # a special token or a normalised piece: not found verbatim
            start_byte = offset
        stop_byte = start_byte + len(piece)
        start = chars.upto(start_byte)
        stop = chars.upto(stop_byte)
        yield token_id, text[start:stop], start, stop
        offset = stop_byte


def tokenize_response(text: str, pieces: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """``/tokenize``'s ``SimpleToken`` list: id, text, and character offsets into ``text``."""
    return [
        {"id": token_id, "text": piece, "start": start, "stop": stop}
        for token_id, piece, start, stop in _simple_tokens(text, pieces)
    ]


def tokenize_body(text: str, pieces: list[tuple[int, bytes]]) -> bytes:
    """``dumps(tokenize_response(text, pieces))``, written without a dict per token.

    A 2 MB prompt has ~600k tokens: their dicts took ~150 MB, this takes the output's size.
    """
    encode = _encoder.encode
    chunks: list[bytes] = []
    parts: list[str] = []
    for token_id, piece, start, stop in _simple_tokens(text, pieces):
        parts.append(f'{{"id":{token_id},"text":{encode(piece)},"start":{start},"stop":{stop}}}')
        if len(parts) == _TOKENS_PER_CHUNK:
            chunks.append(",".join(parts).encode())
            parts.clear()
    if parts:
        chunks.append(",".join(parts).encode())
    # Joined and encoded a chunk at a time: one str.join + encode of 30 MB holds the GIL (and
    # so the event loop, when this runs on a worker thread) for half a second.
    return b"[" + b",".join(chunks) + b"]"


class _CharCount:
    """``upto(k)`` = characters wholly inside ``raw[:k]``, for non-decreasing ``k``.

    Decoding ``raw[:k]`` for every token made ``/tokenize`` quadratic (a 2 MB prompt took
    minutes); this decodes each byte once.
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.byte = 0
        self.chars = 0

    def upto(self, k: int) -> int:
        raw = self.raw
        # A character cut by k does not count: back up to its first byte (UTF-8: <= 3 steps).
        while 0 < k < len(raw) and (raw[k] & 0xC0) == 0x80:
            k -= 1
        if k > self.byte:
            self.chars += len(raw[self.byte : k].decode(errors="ignore"))
            self.byte = k
        return self.chars


# --- OpenAI-compatible routes -------------------------------------------------------------


def _chat_finish(reason: str) -> str:
    # TGI >= 2.3 reports EOS as "stop" on the OpenAI routes.
    return "stop" if reason == "eos_token" else reason


def _chat_logprobs(tokens: list[TokenOut]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": t.text,
                "logprob": t.logprob,
                "top_logprobs": [{"token": x.text, "logprob": x.logprob} for x in t.top],
            }
            for t in tokens
        ]
    }


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    gen: Generation, *, model: str, fingerprint: str, created: int, logprobs: bool
) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        "object": "chat.completion",
        "id": "",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": gen.text},
                "logprobs": _chat_logprobs(gen.tokens) if logprobs else None,
                "finish_reason": _chat_finish(gen.finish_reason),
            }
        ],
        "usage": _usage(gen.input_length, len(gen.tokens)),
    }


def chat_chunk(step: Step, *, model: str, fingerprint: str, created: int, logprobs: bool) -> bytes:
    """A ``chat.completion.chunk`` event for one token (the last one has ``finish_reason``)."""
    final = step.final
    chunk = {
        "object": "chat.completion.chunk",
        "id": "",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": step.delta},
                "logprobs": _chat_logprobs([step.token]) if logprobs else None,
                "finish_reason": _chat_finish(final.finish_reason) if final is not None else None,
            }
        ],
        "usage": None,
    }
    return sse(dumps(chunk))


def chat_usage_chunk(gen: Generation, *, model: str, fingerprint: str, created: int) -> bytes:
    """The extra chunk sent with ``stream_options.include_usage``: no choices, the usage."""
    chunk = {
        "object": "chat.completion.chunk",
        "id": "",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [],
        "usage": _usage(gen.input_length, len(gen.tokens)),
    }
    return sse(dumps(chunk))


def completion(
    generations: list[Generation], *, model: str, fingerprint: str, created: int
) -> dict[str, Any]:
    """A ``text_completion`` object with one choice per prompt."""
    return {
        "object": "text_completion",
        "id": "",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": i,
                "text": gen.text,
                "logprobs": None,
                "finish_reason": _chat_finish(gen.finish_reason),
            }
            for i, gen in enumerate(generations)
        ],
        "usage": _usage(
            sum(g.input_length for g in generations), sum(len(g.tokens) for g in generations)
        ),
    }


def completion_chunk(
    index: int, step: Step, *, model: str, fingerprint: str, created: int
) -> bytes:
    """A streamed ``text_completion`` chunk; a prompt's last one carries its finish and usage.

    Intermediate chunks have ``finish_reason: ""`` and streaming reports EOS as ``eos_token``
    (both TGI quirks of this route).
    """
    final = step.final
    chunk: dict[str, Any] = {
        "object": "text_completion",
        "id": "",
        "created": created,
        "choices": [
            {
                "index": index,
                "text": step.delta,
                "logprobs": None,
                "finish_reason": final.finish_reason if final is not None else "",
            }
        ],
        "model": model,
        "system_fingerprint": fingerprint,
    }
    if final is not None:
        chunk["usage"] = _usage(final.input_length, len(final.tokens))
    return sse(dumps(chunk))


def openai_stream_error(problem: Problem) -> bytes:
    """An error event on the OpenAI streaming routes (TGI >= 2.4.1: status always 422)."""
    return sse(dumps({"error": {"message": problem.message, "http_status_code": 422}}))
