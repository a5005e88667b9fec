"""TGI's own OpenAPI spec, fuzzed by schemathesis against `tgispy serve`; hostile inputs by hand.

Schemathesis generates requests from TGI's ``docs/openapi.json`` (positive: valid by the spec;
negative: violating it) and sends them to a real ``tgispy serve --backend sim`` subprocess on
127.0.0.1. Every answer must be what TGI would send (see ``_answers.check_answer``): no 5xx, no
hang, errors TGI-shaped with the right status, 200 bodies valid by the spec's response schema.

The hand-written cases cover what a spec-driven generator rarely reaches: bodies over the payload
limit, non-UTF-8 bytes, lone surrogates, NaN literals, deep nesting, thousands of stop
sequences, huge ``max_new_tokens``, invalid grammars, garbage on the socket.

``TGISPY_FUZZ_EXAMPLES`` raises the number of examples per operation and mode (default 50).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tgispy.server._process import ServerHandle

from ._answers import OPENAPI, check_answer, check_error, check_stream, is_stream_request

EXAMPLES = int(os.environ.get("TGISPY_FUZZ_EXAMPLES", "50"))
#: no request may take longer than this (the sim answers in milliseconds)
REQUEST_TIMEOUT_S = 15.0

#: Routes of TGI's spec that tgispy serve does not implement (they answer 404; tested below).
NOT_SERVED = ("/invocations", "/chat_tokenize")

#: 200s not checked against the spec's response schema: /metrics is Prometheus text, and for
#: /v1/models the spec declares one ModelInfo while TGI's router returns
#: ``{"object": "list", "data": [ModelInfo]}`` (``ModelsInfo``), as tgispy serve does.
NO_BODY_SCHEMA = frozenset({"/metrics", "/v1/models"})

#: What the fuzzing saw, reported by the last test of the module.
STATS: Counter[str] = Counter()


def _as_openapi_30(node: Any) -> Any:
    """TGI's spec says OpenAPI 3.0.3 but writes ``exclusiveMinimum: 0`` the 3.1 way (a number).

    In 3.0 it is a boolean beside ``minimum``; rewrite it so that schemathesis reads the spec
    at all (it rejects the operations otherwise). The meaning is unchanged: ``> 0``.
    """
    if isinstance(node, list):
        return [_as_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_openapi_30(value) for key, value in node.items()}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        value = out.get(exclusive)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[bound] = value
            out[exclusive] = True
    return out


_schema = schemathesis.openapi.from_dict(_as_openapi_30(json.loads(OPENAPI.read_text())))
_schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
schema = _schema.exclude(path=list(NOT_SERVED))


@pytest.fixture(scope="module", autouse=True)
def _fuzzing_report() -> Iterator[None]:
    """After the module: print what the fuzzing saw (``-s`` shows it) and check it really ran."""
    yield
    print("\nrobustness fuzzing:", json.dumps(dict(sorted(STATS.items())), indent=1))
    if STATS["cases"]:  # the spec-driven run was selected: it exercised answers and errors
        assert STATS["kind:ok"] + STATS["kind:stream"] > 0, STATS
        assert STATS["kind:plain-422"] + STATS["kind:validation"] > 0, STATS


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _content_type(response: schemathesis.Response) -> str:
    # schemathesis' Response: lower-case header names, a list of values each
    values = response.headers.get("content-type") or [""]
    return values[0].split(";")[0].strip()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_tgi_spec_against_sim(case: Any, sim_server: ServerHandle, http: requests.Session) -> None:
    response = case.call(base_url=sim_server.url, session=http, timeout=REQUEST_TIMEOUT_S)
    path = case.operation.path
    if case.method.upper() != case.operation.method.upper():
        # A method the route does not have: the router's 405 (axum's body is empty, aiohttp's
        # says so), before any handler runs.
        assert response.status_code == 405, (case.method, path, response.status_code)
        assert response.headers.get("allow"), response.headers
        STATS["cases"] += 1
        STATS[f"{case.method.upper()} {path} -> 405"] += 1
        return
    kind = check_answer(path, response.status_code, _content_type(response), response.content)
    STATS["cases"] += 1
    STATS[f"{case.operation.method.upper()} {path} -> {response.status_code}"] += 1
    STATS[f"kind:{kind}"] += 1
    if kind == "ok" and not is_stream_request(path, case.body) and path not in NO_BODY_SCHEMA:
        # A 200 must match the spec's own response schema.
        case.validate_response(response, checks=[response_schema_conformance])


# --- hostile inputs, by hand ------------------------------------------------------------------

_JSON_HEADERS = {"Content-Type": "application/json"}
_MSG = [{"role": "user", "content": "Hi"}]


def _body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _params(**parameters: Any) -> bytes:
    return _body({"inputs": "Hi", "parameters": parameters})


#: (id, path, raw body, expected status, expected kind); every body is sent as application/json.
HOSTILE: list[tuple[str, str, bytes, int, str]] = [
    # oversized: over --payload-limit (2 MB by default), with and without a real prompt inside
    ("oversized-body", "/generate", b'{"inputs":"' + b"a" * 2_100_000 + b'"}', 413, "plain-413"),
    (
        "oversized-chat",
        "/v1/chat/completions",
        _body({"messages": _MSG * 200_000}),
        413,
        "plain-413",
    ),
    # wrong types: serde's plain-text 422, naming the field
    ("inputs-int", "/generate", _body({"inputs": 5}), 422, "plain-422"),
    ("inputs-missing", "/generate", _body({"parameters": {}}), 422, "plain-422"),
    ("parameters-list", "/generate", _body({"inputs": "a", "parameters": [1]}), 422, "plain-422"),
    ("stop-string", "/generate", _params(stop="\n"), 422, "plain-422"),
    ("stop-ints", "/generate", _params(stop=[1, 2]), 422, "plain-422"),
    ("max-new-tokens-str", "/generate", _params(max_new_tokens="10"), 422, "plain-422"),
    ("temperature-str", "/generate", _params(temperature="hot"), 422, "plain-422"),
    ("details-str", "/generate", _params(details="yes"), 422, "plain-422"),
    ("seed-negative", "/generate", _params(seed=-1), 422, "plain-422"),
    ("best-of-float", "/generate", _params(best_of=1.5), 422, "plain-422"),
    ("grammar-int", "/generate", _params(grammar=5), 422, "plain-422"),
    ("stream-str", "/", _body({"inputs": "a", "stream": "true"}), 422, "plain-422"),
    ("body-array", "/generate", b"[1, 2]", 422, "plain-422"),
    ("body-null", "/generate", b"null", 422, "plain-422"),
    ("messages-map", "/v1/chat/completions", _body({"messages": {}}), 422, "plain-422"),
    ("message-str", "/v1/chat/completions", _body({"messages": ["hi"]}), 422, "plain-422"),
    ("role-int", "/v1/chat/completions", _body({"messages": [{"role": 5}]}), 422, "plain-422"),
    ("prompt-int", "/v1/completions", _body({"prompt": 5}), 422, "plain-422"),
    ("tokenize-int", "/tokenize", _body({"inputs": [1]}), 422, "plain-422"),
    # huge max_new_tokens: in range for u32 -> TGI's length check; out of range -> serde
    ("max-new-tokens-u32-max", "/generate", _params(max_new_tokens=2**32 - 1), 422, "validation"),
    ("max-new-tokens-2^32", "/generate", _params(max_new_tokens=2**32), 422, "plain-422"),
    ("max-new-tokens-2^64", "/generate", _params(max_new_tokens=2**64), 422, "plain-422"),
    ("max-new-tokens-1e30", "/generate", _params(max_new_tokens=1e30), 422, "plain-422"),
    (
        "max-tokens-chat",
        "/v1/chat/completions",
        _body({"messages": _MSG, "max_tokens": 2**32 - 1}),
        422,
        "validation",
    ),
    (
        "max-tokens-completions",
        "/v1/completions",
        _body({"prompt": "a", "max_tokens": 2**32 - 1}),
        422,
        "validation",
    ),
    ("truncate-huge", "/generate", _params(truncate=2**63), 422, "validation"),
    ("best-of-huge", "/generate", _params(best_of=2**63), 422, "validation"),
    # f32 fields: a subnormal double is 0.0 in single precision, and refused like TGI does
    (
        "repetition-penalty-5e-324",
        "/generate",
        _params(repetition_penalty=5e-324),
        422,
        "validation",
    ),
    ("temperature-1e-50", "/generate", _params(temperature=1e-50), 422, "validation"),
    ("top-p-rounds-to-1", "/generate", _params(top_p=0.99999999), 422, "validation"),
    ("top-n-huge", "/generate", _params(top_n_tokens=2**32 - 1), 422, "validation"),
    (
        "top-logprobs-huge",
        "/v1/chat/completions",
        _body({"messages": _MSG, "logprobs": True, "top_logprobs": 2**32 - 1}),
        422,
        "validation",
    ),
    # thousands of stop sequences
    ("stop-5000", "/generate", _params(stop=["x"] * 5000), 422, "validation"),
    (
        "stop-5000-chat",
        "/v1/chat/completions",
        _body({"messages": _MSG, "stop": ["x"] * 5000}),
        422,
        "validation",
    ),
    (
        "stop-5000-completions",
        "/v1/completions",
        _body({"prompt": "a", "stop": ["x"] * 5000}),
        422,
        "validation",
    ),
    # invalid grammars: TGI's 422 "grammar is not valid", or serde's 422 for the wrong shape
    (
        "regex-unbalanced",
        "/generate",
        _params(grammar={"type": "regex", "value": "(("}),
        422,
        "validation",
    ),
    (
        "regex-empty",
        "/generate",
        _params(grammar={"type": "regex", "value": ""}),
        422,
        "validation",
    ),
    (
        "regex-lookahead",
        "/generate",
        _params(grammar={"type": "regex", "value": "(?=a)a"}),
        422,
        "validation",
    ),
    (
        "regex-backreference",
        "/generate",
        _params(grammar={"type": "regex", "value": r"(a)\1"}),
        422,
        "validation",
    ),
    (
        "regex-nested-2000",
        "/generate",
        _params(grammar={"type": "regex", "value": "(" * 2000 + ")" * 2000}),
        422,
        "validation",
    ),
    (
        "regex-repeat-overflow",
        "/generate",
        _params(grammar={"type": "regex", "value": "a{99999999999}"}),
        422,
        "validation",
    ),
    (
        "json-not-json",
        "/generate",
        _params(grammar={"type": "json", "value": "{"}),
        422,
        "validation",
    ),
    (
        "json-no-properties",
        "/generate",
        _params(grammar={"type": "json", "value": {"type": "object"}}),
        422,
        "validation",
    ),
    (
        "json-not-object",
        "/generate",
        _params(grammar={"type": "json", "value": 5}),
        422,
        "validation",
    ),
    (
        "json-string-nan",
        "/generate",
        _params(grammar={"type": "json", "value": '{"properties": {"a": NaN}}'}),
        422,
        "validation",
    ),
    (
        "json-string-deep",
        "/generate",
        _params(
            grammar={"type": "json", "value": '{"properties":' + "[" * 5000 + "]" * 5000 + "}"}
        ),
        422,
        "validation",
    ),
    (
        "json-string-surrogate",
        "/generate",
        _params(grammar={"type": "json", "value": '{"properties": {"\\ud800": {}}}'}),
        422,
        "validation",
    ),
    (
        "json-schema-no-schema",
        "/generate",
        _params(grammar={"type": "json_schema", "value": {}}),
        422,
        "plain-422",
    ),
    (
        "json-schema-schema-int",
        "/generate",
        _params(grammar={"type": "json_schema", "value": {"schema": 5}}),
        422,
        "validation",
    ),
    (
        "grammar-unknown-type",
        "/generate",
        _params(grammar={"type": "xml", "value": "<a/>"}),
        422,
        "plain-422",
    ),
    ("grammar-no-value", "/generate", _params(grammar={"type": "regex"}), 422, "plain-422"),
    (
        "response-format-bad",
        "/v1/chat/completions",
        _body({"messages": _MSG, "response_format": {"type": "regex", "value": "(("}}),
        422,
        "validation",
    ),
    # not UTF-8, or not JSON that serde_json accepts
    ("latin-1", "/generate", '{"inputs": "caf\xe9"}'.encode("latin-1"), 400, "plain-400"),
    ("overlong-utf8", "/generate", b'{"inputs": "\xc0\xaf"}', 400, "plain-400"),
    ("utf-16", "/generate", '{"inputs": "a"}'.encode("utf-16"), 400, "plain-400"),
    ("utf-8-bom", "/generate", b'\xef\xbb\xbf{"inputs": "a"}', 400, "plain-400"),
    ("raw-nul-in-string", "/generate", b'{"inputs": "a\x00b"}', 400, "plain-400"),
    ("lone-surrogate", "/generate", b'{"inputs": "\\ud800"}', 400, "plain-400"),
    ("lone-surrogate-key", "/generate", b'{"inputs": "a", "\\udfff": 1}', 400, "plain-400"),
    (
        "lone-surrogate-stop",
        "/generate",
        b'{"inputs": "a", "parameters": {"stop": ["\\udc00"]}}',
        400,
        "plain-400",
    ),
    ("lone-surrogate-stream", "/generate_stream", b'{"inputs": "\\ud800"}', 400, "plain-400"),
    (
        "lone-surrogate-chat",
        "/v1/chat/completions",
        b'{"messages": [{"role": "user", "content": "\\ud83d"}]}',
        400,
        "plain-400",
    ),
    ("lone-surrogate-tokenize", "/tokenize", b'{"inputs": "x\\ud800"}', 400, "plain-400"),
    ("nan", "/generate", b'{"inputs": "a", "parameters": {"temperature": NaN}}', 400, "plain-400"),
    (
        "infinity",
        "/generate",
        b'{"inputs": "a", "parameters": {"top_p": Infinity}}',
        400,
        "plain-400",
    ),
    (
        "minus-infinity",
        "/v1/chat/completions",
        b'{"messages": [], "temperature": -Infinity}',
        400,
        "plain-400",
    ),
    (
        "float-overflow",
        "/generate",
        b'{"inputs": "a", "parameters": {"temperature": 1e999}}',
        400,
        "plain-400",
    ),
    (
        "int-5000-digits",
        "/generate",
        b'{"inputs": "a", "parameters": {"seed": ' + b"9" * 5000 + b"}}",
        400,
        "plain-400",
    ),
    ("empty-body", "/generate", b"", 400, "plain-400"),
    ("garbage", "/generate", b"\x00\xff\xfe garbage", 400, "plain-400"),
    ("truncated-json", "/generate", b'{"inputs": "a", "parameters": {', 400, "plain-400"),
    # deeply nested JSON: serde_json stops at 128 levels, and so do we (Python would recurse)
    ("nested-100k", "/generate", b"[" * 100_000 + b"]" * 100_000, 400, "plain-400"),
    (
        "nested-in-parameters",
        "/generate",
        b'{"inputs": "a", "parameters": {"x": ' + b"[" * 200 + b"]" * 200 + b"}}",
        400,
        "plain-400",
    ),
    (
        "nested-in-chat",
        "/v1/chat/completions",
        b'{"messages": [], "tools": ' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}",
        400,
        "plain-400",
    ),
    # prompts that are too long (inside the payload limit): TGI's length checks, after tokenizing
    (
        "prompt-1.8MB",
        "/generate",
        _body({"inputs": "a " * 900_000, "parameters": {"max_new_tokens": 5}}),
        422,
        "validation",
    ),
    (
        "messages-10000",
        "/v1/chat/completions",
        _body({"messages": _MSG * 10_000}),
        422,
        "validation",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"),
    [pytest.param(*case[1:], id=case[0]) for case in HOSTILE],
)
def test_hostile_body_gets_its_4xx(
    sim_server: ServerHandle, http: requests.Session, path: str, body: bytes, status: int, kind: str
) -> None:
    response = http.post(
        sim_server.url + path, data=body, headers=_JSON_HEADERS, timeout=REQUEST_TIMEOUT_S
    )
    content_type = response.headers.get("Content-Type", "").split(";")[0]
    assert response.status_code == status, response.text[:300]
    assert check_error(response.status_code, content_type, response.content) == kind


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_params(stop=["x"] * 5000), id="stop-5000"),
        pytest.param(_params(max_new_tokens=2**32 - 1), id="max-new-tokens-u32-max"),
        pytest.param(_params(grammar={"type": "regex", "value": "(("}), id="regex-unbalanced"),
        pytest.param(_params(best_of=2), id="best-of"),
        pytest.param(_params(decoder_input_details=True), id="decoder-input-details"),
    ],
)
def test_hostile_stream_gets_tgi_error_event(
    sim_server: ServerHandle, http: requests.Session, body: bytes
) -> None:
    """TGI validates a stream after sending its head: a 200 whose only event is the error."""
    response = http.post(
        sim_server.url + "/generate_stream",
        data=body,
        headers=_JSON_HEADERS,
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 200
    events = check_stream("/generate_stream", response.content)
    assert len(events) == 1 and events[0]["error_type"] == "validation", events


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 415, id="no-content-type"),
        pytest.param({"Content-Type": "text/plain"}, 415, id="text-plain"),
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, 415, id="form"),
        pytest.param({"Content-Type": "application/json; charset=utf-8"}, 200, id="charset"),
    ],
)
def test_content_type_is_checked_before_the_body(
    sim_server: ServerHandle, http: requests.Session, headers: dict[str, str], status: int
) -> None:
    response = http.post(
        sim_server.url + "/generate", data=_params(max_new_tokens=2), headers=headers, timeout=10
    )
    assert response.status_code == status
    if status != 200:
        assert check_error(status, "text/plain", response.content) == f"plain-{status}"


def test_oversized_chunked_body_is_refused(
    sim_server: ServerHandle, http: requests.Session
) -> None:
    """No Content-Length to check up front: the limit applies while reading."""

    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": "'
        for _ in range(300):
            yield b"a" * 10_000
        yield b'"}'

    response = http.post(
        sim_server.url + "/generate", data=chunks(), headers=_JSON_HEADERS, timeout=30
    )
    assert response.status_code == 413
    assert check_error(413, "text/plain", response.content) == "plain-413"


def _raw_exchange(url: str, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection; return whatever comes back before it closes."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), id="tls-hello"),
        pytest.param(b"\x00\xff\xfe\xfd garbage\r\n\r\n", id="binary"),
        pytest.param(b"GET /health HTTP/9.9\r\n\r\n", id="bad-version"),
        pytest.param(b"G\x00T /health HTTP/1.1\r\nHost: x\r\n\r\n", id="bad-method"),
        pytest.param(
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
            id="huge-header",
        ),
        pytest.param(
            b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: -1\r\n\r\n{}",
            id="negative-length",
        ),
        pytest.param(
            b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"inputs"',
            id="short-body",
        ),
        pytest.param(
            b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="bad-chunk",
        ),
    ],
)
def test_garbage_on_the_socket_never_gets_a_5xx(sim_server: ServerHandle, data: bytes) -> None:
    received = _raw_exchange(sim_server.url, data)
    if received:  # a 4xx, or nothing at all (the connection closed): never a 5xx
        status_line = received.split(b"\r\n", 1)[0]
        assert re.fullmatch(rb"HTTP/1\.[01] 4\d\d .*", status_line), received[:300]


# --- arbitrary JSON in TGI-shaped bodies (hypothesis) ------------------------------------------

# Text that may hold lone surrogates: json.dumps escapes them ("\ud800"), or writes them raw
# (ensure_ascii=False, then "surrogatepass"), which is not UTF-8 at all.
_text = (
    st.text(max_size=12)
    | st.text(st.characters(exclude_categories=(), max_codepoint=0xFFFF), max_size=6)
    | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
)
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included
    | _text
)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)


@st.composite
def _nested(draw: st.DrawFn) -> Any:
    value = draw(_json)
    # (json.dumps itself recurses: deeper nesting is added as raw text in _request)
    for _ in range(draw(st.sampled_from([1, 10, 127, 128, 600]))):
        value = [value] if draw(st.booleans()) else {"a": value}
    return value


_any = _json | _nested()
_PARAMETER_NAMES = [
    "best_of", "decoder_input_details", "details", "do_sample", "frequency_penalty", "grammar",
    "max_new_tokens", "repetition_penalty", "return_full_text", "seed", "stop", "temperature",
    "top_k", "top_n_tokens", "top_p", "truncate", "typical_p", "watermark", "adapter_id",
]  # fmt: skip
_plausible = (
    st.integers(min_value=-3, max_value=2**33)
    | st.floats(min_value=-3, max_value=3)
    | st.booleans()
    | st.lists(_text, max_size=6)
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["json", "regex", "json_schema", "json_object"]), "value": _any}
    )
)
_parameters = st.dictionaries(st.sampled_from(_PARAMETER_NAMES), _plausible | _any, max_size=6)
_generate = st.fixed_dictionaries(
    {"inputs": _text | _any}, optional={"parameters": _parameters | _any, "stream": _any}
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant"]) | _any, "content": _text | _any}
)
_CHAT_FIELDS = [
    "max_tokens", "temperature", "top_p", "stop", "seed", "stream", "logprobs", "top_logprobs",
    "response_format", "tools", "tool_choice", "stream_options", "presence_penalty", "n",
    "frequency_penalty", "model", "max_completion_tokens",
]  # fmt: skip
_chat = st.fixed_dictionaries(
    {"messages": st.lists(_message, max_size=3) | _any},
    optional=dict.fromkeys(_CHAT_FIELDS, _plausible | _any),
)
_COMPLETION_FIELDS = ["max_tokens", "temperature", "top_p", "stop", "seed", "stream", "suffix"]
_completion = st.fixed_dictionaries(
    {"prompt": _text | st.lists(_text, max_size=5) | _any},
    optional=dict.fromkeys(_COMPLETION_FIELDS, _plausible | _any),
)
_BODIES = {
    "/": _generate,
    "/generate": _generate,
    "/generate_stream": _generate,
    "/tokenize": _generate,
    "/v1/chat/completions": _chat,
    "/v1/completions": _completion,
}


@st.composite
def _request(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(sorted(_BODIES)))
    body = draw(_BODIES[path] | _any)
    if isinstance(body, dict) and path in ("/generate", "/tokenize", "/generate_stream"):
        # (max_new_tokens absent means "up to the context": keep the sim's answers short)
        params = body.get("parameters")
        if isinstance(params, dict) and "max_new_tokens" not in params:
            params["max_new_tokens"] = 8
    text = json.dumps(body, allow_nan=True, ensure_ascii=draw(st.booleans()))
    depth = draw(st.sampled_from([0] * 6 + [128, 3000, 100_000]))
    text = "[" * depth + text + "]" * depth
    return path, text.encode("utf-8", "surrogatepass")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(request=_request())
@settings(
    max_examples=EXAMPLES * 8,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_arbitrary_json_in_tgi_bodies(
    request: tuple[str, bytes], sim_server: ServerHandle, http: requests.Session
) -> None:
    path, body = request
    response = http.post(
        sim_server.url + path, data=body, headers=_JSON_HEADERS, timeout=REQUEST_TIMEOUT_S
    )
    content_type = response.headers.get("Content-Type", "").split(";")[0]
    kind = check_answer(path, response.status_code, content_type, response.content)
    if response.status_code not in (400, 413):
        # The server took the body for JSON: an independent strict parser (orjson: no NaN, no
        # lone surrogates, UTF-8 only) and serde_json's depth limit must agree.
        assert _depth(orjson.loads(body)) <= 127, (path, body[:200], response.text[:200])
    STATS["json-fuzz cases"] += 1
    STATS[f"json-fuzz kind:{kind}"] += 1


# --- resource bounds -------------------------------------------------------------------------


def test_tokenize_of_a_two_megabyte_prompt_is_linear(
    sim_server: ServerHandle, http: requests.Session
) -> None:
    """Offsets were computed by decoding the prefix for every token: minutes for 2 MB."""
    text = "é " * 600_000  # 1.8 MB of UTF-8, 600,001 tokens; multi-byte characters on purpose
    body = json.dumps({"inputs": text}, ensure_ascii=False).encode()
    response = http.post(
        sim_server.url + "/tokenize",
        data=body,
        headers=_JSON_HEADERS,
        timeout=REQUEST_TIMEOUT_S * 2,
    )
    assert response.status_code == 200
    tokens = response.json()
    assert len(tokens) == 600_001  # the trailing space is a token of its own
    assert tokens[-1]["stop"] == len(text)
    assert "".join(t["text"] for t in tokens) == text


async def test_sim_does_not_keep_every_prompt() -> None:
    """The sim's token cache is for its scripted texts; prompts (distinct, large) stay out."""
    from tgispy.server import SimBackend, SimConfig
    from tgispy.server._sim import sim_tokens

    backend = SimBackend(SimConfig(echo=True))
    before = sim_tokens.cache_info().currsize
    for i in range(50):
        assert await backend.count_tokens(f"{i}" + " word" * 1000) == 1001
    assert sim_tokens.cache_info().currsize == before


# --- the real model (llama backend, the session's shared model_server): a short run ---------

MODEL_EXAMPLES = int(os.environ.get("TGISPY_FUZZ_MODEL_EXAMPLES", "6"))
#: generation stays short: schemathesis may ask for up to the whole context
MODEL_MAX_TOKENS = 8
model_schema = _schema.include(
    path=["/generate", "/generate_stream", "/v1/chat/completions", "/v1/completions", "/tokenize"]
)


def _cap_generation(path: str, body: Any) -> None:
    """Keep generated lengths short on the real model (leaving other values as generated)."""
    if not isinstance(body, dict):
        return
    if path in ("/generate", "/generate_stream"):
        params = body.setdefault("parameters", {})
        if isinstance(params, dict):
            value = params.get("max_new_tokens")
            if value is None or (isinstance(value, int) and value > MODEL_MAX_TOKENS):
                params["max_new_tokens"] = MODEL_MAX_TOKENS
        return
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > MODEL_MAX_TOKENS:
            body[key] = MODEL_MAX_TOKENS
    if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        body["max_tokens"] = MODEL_MAX_TOKENS


@pytest.mark.model
@model_schema.parametrize()
@settings(
    max_examples=MODEL_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # no coverage phase: it adds hundreds of cases
)
def test_tgi_spec_against_model(
    case: Any, model_server: ServerHandle, http: requests.Session
) -> None:
    path = case.operation.path
    _cap_generation(path, case.body)
    response = case.call(base_url=model_server.url, session=http, timeout=60)
    if case.method.upper() != case.operation.method.upper():
        assert response.status_code == 405
        return
    kind = check_answer(path, response.status_code, _content_type(response), response.content)
    STATS["model cases"] += 1
    STATS[f"model kind:{kind}"] += 1


@pytest.mark.model
@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param("/generate", b'{"inputs": "\\ud800 hi"}', 400, id="lone-surrogate"),
        pytest.param("/generate", _params(temperature=float("nan")), 400, id="nan"),
        pytest.param("/generate", _params(stop=["\x00"], max_new_tokens=4), 200, id="nul-stop"),
        pytest.param(
            "/generate", _params(stop=["x" * 100_000], max_new_tokens=4), 200, id="long-stop"
        ),
        pytest.param(
            "/generate",
            _params(grammar={"type": "regex", "value": "\x00|a"}, max_new_tokens=4),
            200,
            id="nul-regex",
        ),
        pytest.param(
            "/generate",
            _params(grammar={"type": "regex", "value": "(" * 2000 + ")" * 2000}),
            422,
            id="regex-nested",
        ),
        pytest.param(
            "/generate",
            _params(grammar={"type": "json", "value": {"properties": {"a": {"type": "wat"}}}}),
            422,
            id="json-schema-bad-type",
        ),
        pytest.param(
            "/generate", _params(max_new_tokens=2**32 - 1), 422, id="max-new-tokens-u32-max"
        ),
        pytest.param(
            "/generate",
            _body({"inputs": "a " * 200_000, "parameters": {"max_new_tokens": 4}}),
            422,
            id="prompt-400kB",
        ),
        pytest.param(
            "/v1/chat/completions",
            _body({"messages": [{"role": "tool", "content": "x"}] * 3, "max_tokens": 4}),
            None,
            id="odd-roles",
        ),
    ],
)
def test_hostile_bodies_against_model(
    model_server: ServerHandle,
    http: requests.Session,
    path: str,
    body: bytes,
    status: int | None,
) -> None:
    response = http.post(model_server.url + path, data=body, headers=_JSON_HEADERS, timeout=60)
    content_type = response.headers.get("Content-Type", "").split(";")[0]
    check_answer(path, response.status_code, content_type, response.content)
    if status is not None:
        assert response.status_code == status, response.text[:300]


def test_routes_tgispy_does_not_serve_answer_404(
    sim_server: ServerHandle, http: requests.Session
) -> None:
    for path in NOT_SERVED:
        response = http.post(sim_server.url + path, json={"inputs": "x"}, timeout=10)
        assert response.status_code == 404, path
