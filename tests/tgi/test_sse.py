"""SSEDecoder + the stream-event parsers on byte streams built from protocol_facts.json's shapes."""

from __future__ import annotations

import copy
import itertools
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgispy.errors import (
    IncompleteGenerationError,
    MalformedResponseError,
    OverloadedError,
    ValidationError,
)
from tgispy.tgi import SSEDecoder, parse_chat_chunk, parse_stream_event

from ._data import protocol_facts

SSE = protocol_facts()["sse"]
GENERATE = SSE["/generate_stream"]
CHAT = SSE["/v1/chat/completions (stream=true)"]
REPLICA = "http://127.0.0.1:3000"
TEXTS = ["Hé", "llo", " wörld", " 🤗", "!"]  # multi-byte characters, split by byte feeding


def token_events() -> list[dict[str, Any]]:
    events = []
    for i, text in enumerate(TEXTS, start=1):
        event = copy.deepcopy(GENERATE["token_event"])
        event["index"] = i
        event["token"].update(id=100 + i, text=text, logprob=-0.5 * i)
        events.append(event)
    return events


def final_event() -> dict[str, Any]:
    event = copy.deepcopy(GENERATE["final_event"])
    event["index"] = len(TEXTS) + 1
    event["token"] = {"id": 2, "text": "</s>", "logprob": -0.01, "special": True}
    event["generated_text"] = "".join(TEXTS)
    event["details"].update(finish_reason="eos_token", generated_tokens=len(TEXTS) + 1)
    return event


def encode(
    payloads: list[str], *, space: bool = True, crlf: bool = False, keep_alive: bool = True
) -> bytes:
    nl = "\r\n" if crlf else "\n"
    out = []
    for i, payload in enumerate(payloads):
        if keep_alive and i % 2:
            out.append(f":{nl}{nl}")
        out.append(f"data:{' ' if space else ''}{payload}{nl}{nl}")
    return "".join(out).encode("utf-8")


def feed_in_pieces(wire: bytes, sizes: list[int]) -> list[str]:
    decoder = SSEDecoder()
    out: list[str] = []
    pos = 0
    for size in sizes:
        out += decoder.feed(wire[pos : pos + size])
        pos += size
    out += decoder.feed(wire[pos:]) if pos < len(wire) else []
    return out + decoder.close()


def byte_by_byte(wire: bytes) -> list[str]:
    return feed_in_pieces(wire, [1] * len(wire))


def generate_stream_payloads() -> list[str]:
    return [json.dumps(e, ensure_ascii=False) for e in [*token_events(), final_event()]]


@pytest.mark.parametrize("space", [False, True], ids=["pre-2.1 data:", "2.1+ data: "])
@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_generate_stream_byte_by_byte(space: bool, crlf: bool) -> None:
    payloads = generate_stream_payloads()
    decoded = byte_by_byte(encode(payloads, space=space, crlf=crlf))
    assert decoded == payloads
    events = [parse_stream_event(p) for p in decoded]
    assert [e.token.text for e in events if e.token] == [*TEXTS, "</s>"]
    assert [e.index for e in events] == list(range(1, len(TEXTS) + 2))
    *tokens, final = events
    assert not any(e.is_final for e in tokens) and final.is_final
    assert final.generated_text == "Héllo wörld 🤗!"
    assert final.details is not None
    assert (final.details.finish_reason, final.details.generated_tokens) == ("eos_token", 6)
    assert final.details.input_length == GENERATE["final_event"]["details"]["input_length"]
    assert final.token is not None and final.token.special


@settings(max_examples=60, deadline=None, database=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=60),
    space=st.booleans(),
    crlf=st.booleans(),
)
def test_any_chunking_gives_the_same_payloads(cuts: list[int], space: bool, crlf: bool) -> None:
    payloads = generate_stream_payloads()
    assert feed_in_pieces(encode(payloads, space=space, crlf=crlf), cuts) == payloads


def test_details_null_final_event() -> None:
    event = final_event()
    event["details"] = None
    final = parse_stream_event(json.dumps(event))
    assert final.is_final and final.details is None and final.generated_text == "".join(TEXTS)


@pytest.mark.parametrize("space", [False, True])
def test_generate_stream_error_mid_stream(space: bool) -> None:
    error = dict(GENERATE["error_event"], error="Model is overloaded", error_type="overloaded")
    payloads = [json.dumps(e) for e in token_events()[:2]] + [json.dumps(error)]
    decoded = byte_by_byte(encode(payloads, space=space))
    assert parse_stream_event(decoded[0]).token is not None
    with pytest.raises(OverloadedError) as info:
        for payload in decoded:
            parse_stream_event(payload, replica=REPLICA)
    assert (info.value.status, info.value.replica) == (429, REPLICA)


def test_incomplete_stream_error_event() -> None:
    payload = json.dumps(
        {"error": "Incomplete generation stream", "error_type": "incomplete_generation_stream"}
    )
    with pytest.raises(IncompleteGenerationError) as info:
        parse_stream_event(payload, replica=REPLICA)
    assert info.value.retryable and info.value.replica == REPLICA


def test_validation_error_event_from_facts() -> None:
    with pytest.raises(ValidationError) as info:
        parse_stream_event(json.dumps(GENERATE["error_event"]))
    assert info.value.message == GENERATE["error_event"]["error"]


# ---- chat streams ------------------------------------------------------------------------------


def chat_chunk(content: str | None, finish_reason: str | None = None) -> dict[str, Any]:
    chunk = copy.deepcopy(CHAT["chunk"])
    chunk["choices"][0]["delta"]["content"] = content
    chunk["choices"][0]["finish_reason"] = finish_reason
    return chunk


def usage_chunk() -> dict[str, Any]:
    chunk = copy.deepcopy(CHAT["chunk"])
    chunk["choices"] = []
    chunk["usage"] = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    return chunk


def test_chat_stream_with_usage_and_done() -> None:
    chunks = [chat_chunk(t) for t in TEXTS] + [chat_chunk("", "stop"), usage_chunk()]
    payloads = [json.dumps(c, ensure_ascii=False) for c in chunks] + ["[DONE]"]
    decoded = byte_by_byte(encode(payloads))
    parsed = [parse_chat_chunk(p) for p in decoded]
    assert parsed[-1] is None
    done = [c for c in parsed if c is not None]
    assert "".join(c.content or "" for c in done) == "".join(TEXTS)
    assert done[-2].finish_reason == "stop"
    assert done[-1].usage == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


CHAT_ERRORS = [
    # 1.4.0 - 2.3.x: the /generate_stream shape (followed by [DONE] from 2.2.0)
    ({"error": "Model is overloaded", "error_type": "overloaded"}, OverloadedError, 429),
    # 2.4.1+: the documented event, always 422, no error_type
    (CHAT["error_event"], OverloadedError, 422),
    (
        {
            "error": {
                "message": "Input validation error: `top_p` must be > 0.0 and < 1.0",
                "http_status_code": 422,
            }
        },
        ValidationError,
        422,
    ),
    # OpenAI-style error object
    (
        {"error": {"message": "Incomplete generation", "type": "incomplete_generation"}},
        IncompleteGenerationError,
        500,
    ),
]


@pytest.mark.parametrize(("event", "cls", "status"), CHAT_ERRORS)
def test_chat_error_event_mid_stream(event: dict[str, Any], cls: type, status: int) -> None:
    payloads = [json.dumps(chat_chunk("Hi")), json.dumps(event), "[DONE]"]
    decoded = byte_by_byte(encode(payloads, space=True))
    first = parse_chat_chunk(decoded[0], replica=REPLICA)
    assert first is not None and first.content == "Hi"
    with pytest.raises(cls) as info:
        parse_chat_chunk(decoded[1], replica=REPLICA)
    assert info.value.status == status and info.value.replica == REPLICA
    assert parse_chat_chunk(decoded[2]) is None


# ---- decoder edge cases ------------------------------------------------------------------------


def test_comments_and_keepalives_yield_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": keep-alive\n\n:\n\n: another\r\n\r\n") == []
    assert decoder.close() == []


def test_multiline_data_and_other_fields() -> None:
    decoder = SSEDecoder()
    wire = b"event: message\nid: 7\nretry: 100\ndata: a\ndata: b\n\n"
    assert decoder.feed(wire) == ["a\nb"]


def test_event_without_data_is_skipped() -> None:
    assert SSEDecoder().feed(b"event: ping\n\ndata: x\n\n") == ["x"]


def test_close_flushes_an_unterminated_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}') == []
    assert decoder.close() == ['{"a": 1}']


def test_close_after_a_lone_cr() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.close() == ["x"]


def test_bom_at_stream_start_is_ignored() -> None:
    assert byte_by_byte(b"\xef\xbb\xbfdata: x\n\n") == ["x"]


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        SSEDecoder().feed(b"data: \xff\xfe\n\n")


def test_stream_cut_inside_a_character_is_malformed() -> None:
    decoder = SSEDecoder()
    decoder.feed("data: 🤗".encode()[:-1])
    with pytest.raises(MalformedResponseError):
        decoder.close()


def test_malformed_stream_events() -> None:
    for bad in ["not json", "[1, 2]", '{"index": 1}', '{"token": {"id": "x", "text": 1}}']:
        with pytest.raises(MalformedResponseError):
            parse_stream_event(bad)
    for bad in ["not json", '{"choices": "x"}', '{"id": ""}']:
        with pytest.raises(MalformedResponseError):
            parse_chat_chunk(bad)


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []  # the LF pairs with the CR: no blank line yet
    assert decoder.feed(b"\n\r") == ["a\nb"]
    assert decoder.feed(b"\n") == []  # the pair of the last CR, not another blank line
    assert decoder.close() == []


def test_cr_only_line_ends() -> None:
    assert byte_by_byte(b"data: a\rdata: b\r\rdata: c\r\r") == ["a\nb", "c"]


def test_field_parsing_follows_the_spec() -> None:
    decoder = SSEDecoder()
    wire = (
        b"data\n"  # a field name alone: empty value
        b"data:  two spaces\n"  # only one leading space is removed
        b"data:x:y\n"  # the value keeps later colons
        b"Data: ignored\n"  # field names are case-sensitive
        b"unknown: ignored\n"
        b"\n"
    )
    assert decoder.feed(wire) == ["\n two spaces\nx:y"]


def test_id_and_retry_are_kept_and_invalid_ones_ignored() -> None:
    decoder = SSEDecoder()
    assert (decoder.last_event_id, decoder.retry) == ("", None)
    assert decoder.feed(b"id: 7\nretry: 1500\ndata: x\n\n") == ["x"]
    assert (decoder.last_event_id, decoder.retry) == ("7", 1500)
    decoder.feed(b"id: a\x00b\nretry: 1.5\nretry: -1\nretry: \xd9\xa3\n\n")  # NUL; not ASCII digits
    assert (decoder.last_event_id, decoder.retry) == ("7", 1500)
    decoder.feed(b"id\n\n")  # an empty id resets it, as the spec says
    assert decoder.last_event_id == ""


def test_only_one_leading_bom_is_skipped() -> None:
    # A second BOM is part of the first line, whose field name is then unknown.
    assert byte_by_byte(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == ["y"]
    assert byte_by_byte(b"data: \xef\xbb\xbfx\n\n") == ["\ufeffx"]


def test_empty_data_events_are_skipped_but_data_lines_join() -> None:
    assert SSEDecoder().feed(b"data:\n\ndata:\ndata:\n\n") == ["\n"]


# ---- property tests: any split of the bytes decodes like the whole, and like the spec ----------


def spec_payloads(wire: bytes) -> list[str]:
    """The WHATWG event-stream algorithm written out literally over the whole stream.

    Differs from the spec in the two documented ways: events whose data is empty are not
    returned, and the stream's end dispatches a last event left without its blank line.
    """
    text = wire.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    out: list[str] = []
    buffer = ""
    for line in [*re.split(r"\r\n|\r|\n", text), ""]:
        if line == "":
            if buffer and buffer[:-1]:
                out.append(buffer[:-1])
            buffer = ""
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                buffer += value + "\n"
    return out


_value = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=8)
_line = st.one_of(
    st.builds(lambda v: f"data:{v}", _value),
    st.builds(lambda v: f"data: {v}", _value),
    st.sampled_from(["data", "data:", ":", ": keep-alive", "event: token", "id: 3", "retry: 9"]),
    st.builds(lambda v: f"{v}", _value),
)
_end = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def event_streams(draw: st.DrawFn) -> bytes:
    parts = ["\ufeff"] if draw(st.booleans()) else []
    for line, end in draw(st.lists(st.tuples(_line, _end), max_size=12)):
        parts += [line, end]
    if draw(st.booleans()):  # an unterminated last line
        parts.append(draw(_line))
    return "".join(parts).encode("utf-8")


@settings(max_examples=300, deadline=None, database=None)
@given(wire=event_streams(), cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_split_feeding_equals_whole_feeding_and_the_spec(wire: bytes, cuts: list[int]) -> None:
    bounds = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})
    split = SSEDecoder()
    pieces = [wire[a:b] for a, b in itertools.pairwise(bounds)]
    from_pieces = [p for piece in pieces for p in split.feed(piece)] + split.close()
    whole = SSEDecoder()
    from_whole = whole.feed(wire) + whole.close()
    assert from_pieces == from_whole == spec_payloads(wire)
    assert (split.last_event_id, split.retry) == (whole.last_event_id, whole.retry)


@settings(max_examples=100, deadline=None, database=None)
@given(wire=event_streams())
def test_byte_by_byte_equals_whole(wire: bytes) -> None:
    whole = SSEDecoder()
    assert byte_by_byte(wire) == whole.feed(wire) + whole.close()
