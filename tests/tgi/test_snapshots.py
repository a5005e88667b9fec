"""Replay every recorded real-server response in data/snapshots through the parsers."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tgispy.tgi import (
    ChatChunk,
    SSEDecoder,
    parse_chat_chunk,
    parse_chat_response,
    parse_generate_response,
)

from ._data import SNAPSHOTS

FILES = sorted(SNAPSHOTS.glob("*/*.json"))

# /v1/completions (text_completion) is not a route tgispy speaks; these are its only snapshots.
COMPLETION_FILES = {
    "test_completion_prompts/test_flash_llama_completion_many_prompts.json",
    "test_completion_prompts/test_flash_llama_completion_many_prompts_stream.json",
    "test_completion_prompts/test_flash_llama_completion_single_prompt.json",
}
# Streams the server ended without a single chunk (tool_choice "required" / function object).
EMPTY_STREAMS = {
    "test_tools_llama/test_flash_llama_grammar_tools_sea_creatures_stream_function_object.json",
    "test_tools_llama/test_flash_llama_grammar_tools_sea_creatures_stream_required.json",
}


def _rel(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _kind(item: Any) -> str:
    if isinstance(item, dict) and "generated_text" in item:
        return "generate"
    if isinstance(item, dict):
        return {
            "chat.completion": "chat",
            "chat.completion.chunk": "chunk",
            "text_completion": "completion",
        }.get(item.get("object"), "unknown")
    return "unknown"


def classify(data: Any) -> str:
    if isinstance(data, list):
        kinds = {_kind(item) for item in data}
        if not kinds:
            return "empty"
        if len(kinds) == 1:
            return f"list:{kinds.pop()}"
        return "unknown"
    return _kind(data)


def test_every_snapshot_is_classified_as_the_readme_counts() -> None:
    counts = Counter(classify(json.loads(p.read_bytes())) for p in FILES)
    # The README's index: 203 files; shapes as detected from the content.
    assert len(FILES) == 203
    assert counts == {
        "generate": 103,
        "list:generate": 49,
        "chat": 30,
        "list:chat": 3,
        "chunk": 2,
        "list:chunk": 11,
        "completion": 2,
        "list:completion": 1,
        "empty": 2,
    }


# ---- checks of a parsed value against the raw JSON -------------------------------------------


def check_generate(raw: dict[str, Any], body: bytes | str | Any) -> None:
    parsed = parse_generate_response(body)
    assert parsed.text == raw["generated_text"]
    details = raw["details"]
    seq = parsed.sequences[0]
    assert seq.text == raw["generated_text"]
    assert seq.finish_reason == details["finish_reason"]
    assert seq.generated_tokens == details["generated_tokens"]
    assert seq.seed == details["seed"]
    assert [(t.id, t.text, t.special) for t in seq.tokens] == [
        (t["id"], t["text"], t.get("special", False)) for t in details["tokens"]
    ]
    assert [(t.id, t.text, t.logprob) for t in seq.prefill] == [
        (p["id"], p["text"], p["logprob"]) for p in details["prefill"]
    ]
    logprobs = [t["logprob"] for t in details["tokens"] if t["logprob"] is not None]
    if logprobs:
        assert seq.logprob is not None and math.isclose(seq.logprob, math.fsum(logprobs))
    else:
        assert seq.logprob is None
    others = details.get("best_of_sequences") or []
    assert len(parsed.sequences) == 1 + len(others)


def check_chat(raw: dict[str, Any], body: bytes | str | Any) -> None:
    parsed = parse_chat_response(body)
    choice = raw["choices"][0]
    assert parsed.content == choice["message"]["content"]
    assert parsed.finish_reason == choice["finish_reason"]
    assert parsed.model == raw["model"]
    assert list(parsed.tool_calls) == (choice["message"].get("tool_calls") or [])
    usage = raw["usage"]
    assert parsed.usage == {
        k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    }


def check_chunk(raw: dict[str, Any], chunk: ChatChunk | None) -> None:
    assert chunk is not None
    if raw["choices"]:
        choice = raw["choices"][0]
        assert chunk.content == choice["delta"].get("content")
        assert chunk.finish_reason == choice["finish_reason"]
        assert list(chunk.tool_calls) == (choice["delta"].get("tool_calls") or [])
    else:
        assert chunk.content is None and chunk.finish_reason is None and not chunk.tool_calls
    if raw.get("usage"):
        assert chunk.usage is not None
        assert chunk.usage["total_tokens"] == raw["usage"]["total_tokens"]
    else:
        assert chunk.usage is None


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_snapshot_replays_through_the_parsers(path: Path) -> None:
    raw_bytes = path.read_bytes()
    data = json.loads(raw_bytes)
    kind = classify(data)
    if kind == "generate":
        check_generate(data, raw_bytes)  # the file as the wire would carry it
        check_generate(data, [data])  # POST / returns a one-element list
    elif kind == "list:generate":  # N concurrent requests: each element is one response
        for item in data:
            check_generate(item, json.dumps(item))
    elif kind == "chat":
        check_chat(data, raw_bytes)
    elif kind == "list:chat":
        for item in data:
            check_chat(item, json.dumps(item).encode())
    elif kind == "chunk":
        check_chunk(data, parse_chat_chunk(raw_bytes.decode()))
    elif kind == "list:chunk":
        for item in data:
            check_chunk(item, parse_chat_chunk(json.dumps(item)))
    elif kind == "empty":
        assert _rel(path) in EMPTY_STREAMS
    elif kind in ("completion", "list:completion"):
        assert _rel(path) in COMPLETION_FILES
    else:
        pytest.fail(f"unrecognised snapshot shape in {_rel(path)}")


# ---- specific recorded facts --------------------------------------------------------------------


def _load(rel: str) -> Any:
    return json.loads((SNAPSHOTS / rel).read_bytes())


def test_all_params_keeps_the_stop_text_and_seed() -> None:
    parsed = parse_generate_response(_load("test_flash_llama/test_flash_llama_all_params.json"))
    seq = parsed.sequences[0]
    assert parsed.text == "Test request failed: Error in test"
    assert (seq.finish_reason, seq.seed) == ("stop_sequence", 0)


def test_old_prefill_has_a_null_first_logprob() -> None:
    seq = parse_generate_response(_load("test_bloom_560m/test_bloom_560m.json")).sequences[0]
    assert seq.prefill[0].logprob is None
    assert all(t.logprob is not None for t in seq.prefill[1:])


def test_tool_call_response_keeps_the_call() -> None:
    parsed = parse_chat_response(
        _load("test_tools_llama/test_flash_llama_grammar_tools_nostream.json")
    )
    assert parsed.content is None
    (call,) = parsed.tool_calls
    assert call["function"]["name"] == "get_current_weather"
    assert json.loads(call["function"]["arguments"]) == {
        "location": "Brooklyn, NY",
        "format": "fahrenheit",
    }


def _chunks(rel: str) -> list[ChatChunk]:
    chunks = [parse_chat_chunk(json.dumps(item)) for item in _load(rel)]
    assert all(c is not None for c in chunks)
    return [c for c in chunks if c is not None]


def test_streamed_json_schema_reassembles_to_json() -> None:
    chunks = _chunks("test_json_schema_constrain/test_json_schema_stream.json")
    text = "".join(c.content or "" for c in chunks)
    assert json.loads(text)["firstName"] == "David"
    assert chunks[-1].finish_reason == "stop"


def test_streamed_tool_call_arguments_reassemble_to_json() -> None:
    for rel in (
        "test_tools_llama/test_flash_llama_grammar_tools_choice_stream.json",
        "test_tools_llama/test_flash_llama_grammar_tools_openai.json",
    ):
        chunks = _chunks(rel)
        calls = [call for c in chunks for call in c.tool_calls]
        assert calls[0]["function"]["name"] == "get_current_weather"
        arguments = "".join(call["function"]["arguments"] for call in calls)
        assert json.loads(arguments)["location"]


def test_stream_usage_chunk_comes_last_with_empty_choices() -> None:
    chunks = _chunks("test_completion_prompts/test_chat_openai_usage.json")
    assert "".join(c.content or "" for c in chunks) == "OK!"
    assert chunks[-2].finish_reason == "stop"
    assert chunks[-1].usage == {"prompt_tokens": 39, "completion_tokens": 3, "total_tokens": 42}


# ---- the recorded streams, re-encoded as SSE bytes, through SSEDecoder ----------------------

CHUNK_STREAMS = [p for p in FILES if classify(json.loads(p.read_bytes())) == "list:chunk"]


def _sse_bytes(events: list[str], *, space: bool, crlf: bool) -> bytes:
    nl = "\r\n" if crlf else "\n"
    out = []
    for i, payload in enumerate(events):
        if i % 3 == 1:
            out.append(f":{nl}{nl}")  # axum's keep-alive comment
        out.append(f"data:{' ' if space else ''}{payload}{nl}{nl}")
    return "".join(out).encode()


@pytest.mark.parametrize("path", CHUNK_STREAMS, ids=_rel)
@pytest.mark.parametrize("era", ["pre-2.1 data:", "2.1+ data: "])
def test_recorded_chat_stream_survives_sse_framing(path: Path, era: str) -> None:
    events = [json.dumps(item, ensure_ascii=False) for item in json.loads(path.read_bytes())]
    wire = _sse_bytes([*events, "[DONE]"], space=era.endswith(" "), crlf="pre" in era)
    rng = random.Random(path.name)
    decoder = SSEDecoder()
    payloads: list[str] = []
    pos = 0
    while pos < len(wire):  # arbitrary chunk boundaries, including inside UTF-8 sequences
        step = rng.randint(1, 64)
        payloads += decoder.feed(wire[pos : pos + step])
        pos += step
    payloads += decoder.close()
    assert payloads == [*events, "[DONE]"]
    parsed = [parse_chat_chunk(p) for p in payloads]
    assert parsed[-1] is None
    for raw, chunk in zip(json.loads(path.read_bytes()), parsed[:-1], strict=True):
        check_chunk(raw, chunk)
