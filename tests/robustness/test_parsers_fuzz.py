"""Property tests of the pure parsers on hostile input: only tgispy's typed errors escape.

A server (or a proxy, or a man in the middle) may send anything. Whatever the bytes, the parsers
either return a value or raise a :class:`~tgispy.errors.TgispyError`; never a bare
``KeyError``/``IndexError``/``TypeError``/``AttributeError``/``UnicodeError``/``RecursionError``,
which would escape the retry logic and crash a user's program with an unhelpful trace.

Inputs come in three flavours: arbitrary bytes/text; real responses recorded from TGI servers
(``tests/tgi/data/snapshots``), mutated (a subtree replaced by arbitrary JSON, a key deleted, the
bytes truncated); and JSON nested beyond Python's recursion limit. The coverage-guided
counterparts of these tests are the atheris harnesses in ``fuzz/``.
"""

from __future__ import annotations

import copy
import itertools
import json
import pickle
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tgispy.adapters import Template, TemplateAdapter
from tgispy.errors import TGIError, TgispyError
from tgispy.signatures import ensure_signature
from tgispy.tgi import (
    ServerInfo,
    SSEDecoder,
    error_from_payload,
    error_from_response,
    parse_chat_chunk,
    parse_chat_response,
    parse_generate_response,
    parse_retry_after,
    parse_stream_event,
    usage_from_headers,
)
from tgispy.tgi._errors import MAX_MESSAGE_CHARS

SNAPSHOTS = Path(__file__).resolve().parent.parent / "tgi" / "data" / "snapshots"
FACTS = SNAPSHOTS.parent / "protocol_facts.json"

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def typed_only(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; a TgispyError is an accepted outcome (returned), anything else propagates."""
    try:
        return fn(*args, **kwargs)
    except TgispyError as exc:
        return exc


# --- seeds: real TGI responses ---------------------------------------------------------------


def _shrink(value: Any) -> Any:
    """Cap long lists (token lists run to hundreds of entries) so mutations stay cheap."""
    if isinstance(value, list):
        return [_shrink(v) for v in value[:4]]
    if isinstance(value, dict):
        return {k: _shrink(v) for k, v in value.items()}
    return value


@cache
def _seeds() -> dict[str, list[Any]]:
    seeds: dict[str, list[Any]] = {"generate": [], "chat": [], "chunk": [], "event": []}
    for path in sorted(SNAPSHOTS.glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item, dict):
                continue
            if "generated_text" in item:
                seeds["generate"].append(_shrink(item))
            elif item.get("object") == "chat.completion":
                seeds["chat"].append(_shrink(item))
            elif item.get("object") == "chat.completion.chunk":
                seeds["chunk"].append(_shrink(item))
    for kind, found in seeds.items():
        # keep the set small and varied: every 7th snapshot of each kind
        seeds[kind] = found[::7][:25]
    sse = json.loads(FACTS.read_text(encoding="utf-8"))["sse"]
    stream = sse["/generate_stream"]
    seeds["event"] = [stream["token_event"], stream["final_event"], stream["error_event"]]
    seeds["chunk"].append(sse["/v1/chat/completions (stream=true)"]["error_event"])
    return seeds


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.extend(_paths(child, (*prefix, index)))
    return out


def _set(root: Any, path: tuple[Any, ...], new: Any, *, delete: bool) -> Any:
    if not path:
        return new
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return root


_text = st.text(max_size=20) | st.text(
    st.characters(exclude_categories=(), max_codepoint=0xFFFF), max_size=8
)
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | _text
)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> Any:
    """A real response of ``kind`` with 1-3 subtrees replaced by arbitrary JSON or deleted."""
    value = copy.deepcopy(draw(st.sampled_from(_seeds()[kind])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        delete = bool(path) and draw(st.booleans())
        value = _set(value, path, draw(_json), delete=delete)
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


@st.composite
def wire(draw: st.DrawFn, kind: str) -> bytes:
    """What could come over the wire instead of a ``kind`` response."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.binary(max_size=200))
    body = _dumps(draw(mutated(kind))).encode("utf-8", "surrogatepass")
    if choice == 1:  # cut short, as a dropped connection leaves it
        return body[: draw(st.integers(0, len(body)))]
    if choice == 2:  # nested past Python's recursion limit
        depth = draw(st.sampled_from([500, 5000, 100_000]))
        return b"[" * depth + body + b"]" * depth
    if choice == 3:  # a byte flipped
        at = draw(st.integers(0, max(len(body) - 1, 0)))
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    return body


# --- response parsers ------------------------------------------------------------------------


@FUZZ
@given(body=wire("generate"))
@example(body=b"[" * 100_000)
def test_parse_generate_response_bytes(body: bytes) -> None:
    result = typed_only(parse_generate_response, body, replica="http://r")
    if isinstance(result, TGIError):
        assert result.replica == "http://r" or result.replica is None


@FUZZ
@given(body=mutated("generate") | _json)
def test_parse_generate_response_decoded(body: Any) -> None:
    typed_only(parse_generate_response, body)
    typed_only(parse_generate_response, [body])


@FUZZ
@given(body=wire("chat"))
def test_parse_chat_response_bytes(body: bytes) -> None:
    typed_only(parse_chat_response, body)


@FUZZ
@given(body=mutated("chat") | _json)
def test_parse_chat_response_decoded(body: Any) -> None:
    typed_only(parse_chat_response, body)


@FUZZ
@given(data=wire("event"))
@example(data=b'{"error": {"message": 5}}')
def test_parse_stream_event(data: bytes) -> None:
    # SSE payloads reach the parser as text (the decoder has decoded the UTF-8)
    typed_only(parse_stream_event, data.decode("utf-8", "replace"), replica="http://r")


@FUZZ
@given(data=wire("chunk"))
def test_parse_chat_chunk(data: bytes) -> None:
    typed_only(parse_chat_chunk, data.decode("utf-8", "replace"))


@FUZZ
@given(headers=st.dictionaries(_text, _text, max_size=4), prompt=_text, generated=_text)
def test_usage_from_headers(headers: dict[str, str], prompt: str, generated: str) -> None:
    usage = usage_from_headers(
        {**headers, "x-prompt-tokens": prompt, "x-generated-tokens": generated}
    )
    if usage is not None:
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_seeds_parse_before_mutation() -> None:
    """The mutations start from real, parseable responses (else they would test nothing)."""
    seeds = _seeds()
    assert all(len(found) >= 3 for found in seeds.values()), {k: len(v) for k, v in seeds.items()}
    for body in seeds["generate"]:
        assert parse_generate_response(body).text == body["generated_text"]
    for body in seeds["chat"]:
        parse_chat_response(body)


# --- SSE --------------------------------------------------------------------------------------


@st.composite
def sse_stream(draw: st.DrawFn) -> bytes:
    """Event-stream-like bytes: real payloads, comments, odd line ends, junk, BOMs."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        piece = draw(
            st.sampled_from(["data: ", "data:", ": keep-alive", "event: x", "retry: 9", "id: 1"])
        ).encode()
        payload = draw(mutated("event") | _json)
        parts.append(piece + _dumps(payload).encode("utf-8", "surrogatepass"))
        parts.append(draw(st.sampled_from([b"\n\n", b"\r\n\r\n", b"\r\r", b"\n", b""])))
    if draw(st.booleans()):
        parts.insert(0, b"\xef\xbb\xbf")
    if draw(st.booleans()):
        parts.append(draw(st.binary(max_size=30)))
    return b"".join(parts)


def _feed_all(chunks: list[bytes]) -> list[str] | TgispyError:
    decoder = SSEDecoder()
    out: list[str] = []
    try:
        for chunk in chunks:
            out.extend(decoder.feed(chunk))
        out.extend(decoder.close())
    except TgispyError as exc:
        return exc
    return out


@FUZZ
@given(stream=sse_stream() | st.binary(max_size=300), cuts=st.lists(st.integers(0, 400)))
def test_sse_decoder_is_split_invariant(stream: bytes, cuts: list[int]) -> None:
    """Any split of the bytes gives the same payloads, or the same typed error."""
    whole = _feed_all([stream])
    bounds = sorted({c for c in cuts if c <= len(stream)} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    split = _feed_all(chunks)
    if isinstance(whole, TgispyError):
        assert type(split) is type(whole)
    else:
        assert split == whole


@FUZZ
@given(stream=sse_stream())
def test_sse_payloads_parse_or_raise_typed(stream: bytes) -> None:
    payloads = _feed_all([stream])
    if isinstance(payloads, TgispyError):
        return
    for data in payloads:
        typed_only(parse_stream_event, data)
        typed_only(parse_chat_chunk, data)


# --- error mapping ----------------------------------------------------------------------------


@st.composite
def error_body(draw: st.DrawFn) -> bytes:
    facts = json.loads(FACTS.read_text(encoding="utf-8"))
    seeds: list[Any] = [
        {"error": "x", "error_type": e["error_type"]} for e in facts["infer_errors"]
    ] + [{"error": {"message": "Model is overloaded", "http_status_code": 422}}]
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=300))
    value = draw(st.sampled_from(seeds))
    if choice == 1:
        value = _set(
            copy.deepcopy(value), draw(st.sampled_from(_paths(value))), draw(_json), delete=False
        )
    body = _dumps(value).encode("utf-8", "surrogatepass")
    if choice == 2:  # nested past Python's recursion limit (a prefix is enough to recurse)
        body = b'{"error":' * draw(st.sampled_from([10, 5000, 100_000])) + body
    return body


@FUZZ
@given(
    status=st.integers(100, 999),
    body=error_body() | st.text(max_size=2000).map(str.encode),
    headers=st.dictionaries(st.sampled_from(["Retry-After", "retry-after", "X"]), _text),
)
@example(status=500, body=b'{"error":' * 100_000, headers={})
def test_error_from_response_always_returns_a_picklable_error(
    status: int, body: bytes, headers: dict[str, str]
) -> None:
    err = error_from_response(status, body, replica="http://r", headers=headers)
    assert isinstance(err, TGIError)
    assert err.status == status and err.replica == "http://r"
    assert isinstance(err.message, str)
    assert len(err.message) <= MAX_MESSAGE_CHARS + 40
    assert err.retry_after is None or err.retry_after >= 0
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and str(again) == str(err)


@FUZZ
@given(payload=_json | mutated("event"), status=st.none() | st.integers(100, 599))
def test_error_from_payload_always_returns_a_picklable_error(
    payload: Any, status: int | None
) -> None:
    err = error_from_payload(payload, status=status, replica="http://r")
    assert isinstance(err, TGIError)
    assert isinstance(err.message, str)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and str(again) == str(err)


_http_date = st.from_regex(
    r"(Wed, )?\d{1,40} (Oct|Feb) \d{1,40} \d{1,40}:\d{1,40}(:\d{1,40})? (GMT|[+-]\d{4})",
    fullmatch=True,
)


@FUZZ
@given(value=st.none() | _text | _http_date | st.from_regex(r"\s*\d{1,6000}\s*", fullmatch=True))
@example(value="Wed, 21 Oct 99999 07:28:00 GMT")
@example(value="21 Oct 1 0:" + "9" * 120 + " GMT")  # an OverflowError, found by fuzz/fuzz_errors
@example(value="9" * 5000)
def test_parse_retry_after(value: str | None) -> None:
    seconds = parse_retry_after(value, now=0.0)
    assert seconds is None or (seconds >= 0 and seconds != float("inf"))


# --- /info ------------------------------------------------------------------------------------

_info_value = _json | st.from_regex(r"v?\d{1,6000}(\.\d{1,10}){0,3}[-a-z0-9]*", fullmatch=True)


_INFO_KEYS = [
    "version", "max_input_tokens", "max_input_length", "max_total_tokens", "max_best_of",
    "max_stop_sequences", "max_concurrent_requests", "model_id", "x",
]  # fmt: skip


@FUZZ
@given(data=st.dictionaries(st.sampled_from(_INFO_KEYS), _info_value) | _json)
@example(data={"version": "9" * 5000})
def test_server_info_from_anything(data: Any) -> None:
    info = typed_only(ServerInfo.from_json, data)
    if isinstance(info, ServerInfo):
        version = info.version_tuple
        assert version is None or (len(version) == 3 and all(v >= 0 for v in version))
        for flag in ("grammar", "chat", "frequency_penalty", "adapters", "stream_usage"):
            assert isinstance(getattr(info, f"supports_{flag}"), bool)


# --- the template adapter's parser ------------------------------------------------------------

# DSPy-style labels ("Question", "Final Answer"); the parser strips a prefix's outer whitespace
_label = st.from_regex(r"[A-Za-zé][A-Za-zé0-9 ]{0,10}[A-Za-zé0-9]", fullmatch=True)


@FUZZ
@given(
    completion=st.text(max_size=400) | st.text(st.sampled_from("Answer: \n\r\t-xé"), max_size=80)
)
@example(completion="\nAnswer:\nAnswer:")
def test_template_adapter_parse_never_raises(completion: str) -> None:
    signature = ensure_signature("question, context -> reasoning, answer")
    out = TemplateAdapter().parse(signature, {"question": "q", "context": "c"}, completion)
    assert out["question"] == "q" and out["context"] == "c"
    assert all(isinstance(out.get(k, ""), str) for k in ("reasoning", "answer"))


@FUZZ
@given(
    labels=st.lists(_label, min_size=1, max_size=5, unique=True),
    values=st.lists(st.text(max_size=30), min_size=5, max_size=5),
    prefilled=st.integers(0, 5),
    noise=st.text(max_size=60),
)
def test_template_extract_round_trips_and_never_raises(
    labels: list[str], values: list[str], prefilled: int, noise: str
) -> None:
    keys = [f"f{i}" for i in range(len(labels))]
    template = Template(
        "Do it.",
        [(k, f"{label}:", f"${{{k}}}", None) for k, label in zip(keys, labels, strict=True)],
    )
    # (an example holding every field gets its last one overwritten, as in DSPy 2.4)
    example_values = {k: values[i] for i, k in enumerate(keys[: min(prefilled, len(keys) - 1)])}
    # arbitrary text: a dict back, holding the example and strings only
    out = template.extract(example_values, noise)
    assert all(out[k] == v for k, v in example_values.items())
    assert all(isinstance(v, str) for v in out.values())
    # a completion that writes the missing fields as the prompt asks: each comes back
    start = len(example_values)
    missing = keys[start:]
    texts = [" ".join(v.split()) for v in values[start : len(keys)]]
    assume(missing and all(texts))
    markers = [f"\n{label}:" for label in labels]
    assume(not any(m.strip() in t or m in t for t in texts for m in markers))
    parts = [texts[0]] + [f"{labels[start + i]}: {t}" for i, t in enumerate(texts) if i > 0]
    parsed = template.extract(example_values, " " + "\n".join(parts))
    assert [parsed[k] for k in missing] == texts


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_json_is_a_typed_error_everywhere(depth: int) -> None:
    body = "[" * depth + "]" * depth
    for parse in (
        parse_generate_response,
        parse_chat_response,
        parse_stream_event,
        parse_chat_chunk,
    ):
        assert isinstance(typed_only(parse, body), TgispyError), parse
    assert isinstance(error_from_response(500, body.encode()), TGIError)
