"""Response parsers on crafted bodies: the shapes no snapshot recorded, and malformed input."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from tgispy.errors import MalformedResponseError, OverloadedError, ValidationError
from tgispy.tgi import (
    GeneratedSequence,
    Token,
    parse_chat_chunk,
    parse_chat_response,
    parse_generate_response,
    usage_from_headers,
)


def _tokens(*pairs: tuple[str, float | None]) -> list[dict[str, Any]]:
    return [
        {"id": i, "text": text, "logprob": lp, "special": False}
        for i, (text, lp) in enumerate(pairs, start=10)
    ]


def best_of_body() -> dict[str, Any]:
    """A best_of=3 response with details, as router/src/server.rs serialises it."""
    return {
        "generated_text": " Paris",
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": 2,
            "seed": 11,
            "prefill": [],
            "tokens": _tokens((" Par", -0.25), ("is", -0.5)),
            "best_of_sequences": [
                {
                    "generated_text": " Lyon",
                    "finish_reason": "length",
                    "generated_tokens": 1,
                    "seed": 12,
                    "prefill": [],
                    "tokens": _tokens((" Lyon", -1.5)),
                },
                {
                    "generated_text": " Nice",
                    "finish_reason": "stop_sequence",
                    "generated_tokens": 1,
                    "seed": 13,
                    "prefill": [],
                    "tokens": _tokens((" Nice", -2.0)),
                },
            ],
        },
    }


def test_best_of_sequences_follow_the_best() -> None:
    parsed = parse_generate_response(json.dumps(best_of_body()).encode())
    assert parsed.text == " Paris"
    assert [s.text for s in parsed.sequences] == [" Paris", " Lyon", " Nice"]
    assert [s.finish_reason for s in parsed.sequences] == ["eos_token", "length", "stop_sequence"]
    assert [s.seed for s in parsed.sequences] == [11, 12, 13]
    assert [s.logprob for s in parsed.sequences] == [-0.75, -1.5, -2.0]
    assert parsed.sequences[1].tokens == (Token(10, " Lyon", -1.5, False),)


def test_plain_greedy_response_without_details() -> None:
    parsed = parse_generate_response(b'{"generated_text":"  42"}')
    assert parsed.sequences == (GeneratedSequence("  42"),)
    assert parsed.sequences[0].logprob is None


def test_post_root_one_element_list_and_input_length() -> None:
    body = [
        {
            "generated_text": "x",
            "details": {
                "finish_reason": "length",
                "generated_tokens": 1,
                "seed": None,
                "input_length": 5,
            },
        }
    ]
    seq = parse_generate_response(json.dumps(body)).sequences[0]
    assert (seq.input_length, seq.seed, seq.tokens) == (5, None, ())


def test_logprob_skips_null_entries() -> None:
    seq = GeneratedSequence("ab", tokens=(Token(1, "a", None, False), Token(2, "b", -1.0, True)))
    assert seq.logprob == -1.0
    assert GeneratedSequence("a", tokens=(Token(1, "a", None, False),)).logprob is None


def test_parsed_values_are_frozen() -> None:
    parsed = parse_generate_response({"generated_text": "x"})
    with pytest.raises(AttributeError):
        parsed.sequences[0].text = "y"  # type: ignore[misc]


MALFORMED = [
    b"",
    b"not json",
    b"\xff\xfe",
    b"null",
    b'"text"',
    b"[]",
    b'[{"generated_text": "a"}, {"generated_text": "b"}]',
    b'{"details": null}',
    b'{"generated_text": 5}',
    b'{"generated_text": "a", "details": {"tokens": [{"id": "x", "text": "a"}]}}',
    b'{"generated_text": "a", "details": {"tokens": [{"text": "a"}]}}',
    b'{"generated_text": "a", "details": {"generated_tokens": "3"}}',
    b'{"generated_text": "a", "details": {"best_of_sequences": [{"generated_text": 1}]}}',
    b'{"generated_text": "a", "details": []}',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_generate_bodies(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        parse_generate_response(body)


def test_error_payload_in_a_generate_body_raises_the_mapped_error() -> None:
    body = b'{"error": "Model is overloaded", "error_type": "overloaded"}'
    with pytest.raises(OverloadedError) as info:
        parse_generate_response(body, replica="http://r:1")
    assert info.value.replica == "http://r:1"


def test_memoryview_and_bytearray_bodies() -> None:
    raw = b'{"generated_text": "ok"}'
    assert parse_generate_response(memoryview(raw)).text == "ok"
    assert parse_generate_response(bytearray(raw)).text == "ok"


# ---- usage headers ----------------------------------------------------------------------------


def test_usage_from_headers() -> None:
    headers = {"X-Prompt-Tokens": "12", "x-generated-tokens": "30", "x-compute-time": "0.5"}
    assert usage_from_headers(headers) == {
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "total_tokens": 42,
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-prompt-tokens": "1"},
        {"x-prompt-tokens": "a", "x-generated-tokens": "1"},
        {"x-prompt-tokens": "-1", "x-generated-tokens": "1"},
    ],
)
def test_usage_from_headers_needs_both_numbers(headers: dict[str, str]) -> None:
    assert usage_from_headers(headers) is None


# ---- chat ---------------------------------------------------------------------------------------


def test_chat_response_first_choice_and_usage_extras() -> None:
    body = {
        "object": "chat.completion",
        "model": "tgi",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "4"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 3,
            "completion_tokens": 1,
            "total_tokens": 4,
            "prompt_tokens_details": None,
        },
    }
    parsed = parse_chat_response(json.dumps(body))
    assert (parsed.content, parsed.finish_reason, parsed.model) == ("4", "stop", "tgi")
    assert parsed.usage == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert parsed.tool_calls == ()


def test_chat_error_body() -> None:
    body = (
        b'{"error": "Tool error: Grammar and tools are mutually exclusive",'
        b' "error_type": "tool_error"}'
    )
    with pytest.raises(ValidationError) as info:
        parse_chat_response(body)
    assert info.value.error_type == "tool_error"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"choices": []}',
        b'{"choices": [{"message": "x"}]}',
        b'{"object": "x"}',
        b'{"choices": [{"message": {"content": 5}}]}',
        b'{"choices": [{"message": {"content": null, "tool_calls": "x"}}]}',
    ],
)
def test_malformed_chat_bodies(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        parse_chat_response(body)


def test_chat_chunk_done_with_whitespace_and_empty_finish_reason() -> None:
    assert parse_chat_chunk(" [DONE] ") is None
    chunk = parse_chat_chunk(
        '{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "a"},'
        ' "finish_reason": ""}]}'
    )
    assert chunk is not None and chunk.finish_reason is None and chunk.content == "a"


def test_tool_call_delta_chunk() -> None:
    raw = {
        "choices": [
            {
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]},
                "finish_reason": None,
            }
        ]
    }
    chunk = parse_chat_chunk(json.dumps(raw))
    assert chunk is not None
    assert chunk.tool_calls == ({"index": 0, "function": {"arguments": "{"}},)


def test_parsed_values_pickle_and_compare() -> None:
    """Cache layers pickle these values; a round trip must give equal values back."""
    values = [
        parse_generate_response(json.dumps(best_of_body())),
        parse_chat_response(
            b'{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":'
            b'[{"id":"0","type":"function","function":{"name":"f","arguments":"{}"}}]},'
            b'"finish_reason":"stop"}],"model":"tgi"}'
        ),
        parse_chat_chunk(
            '{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2,'
            ' "total_tokens": 3}}'
        ),
    ]
    for value in values:
        assert pickle.loads(pickle.dumps(value)) == value
