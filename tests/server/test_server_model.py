"""The real engine: SmolLM2-135M on llama.cpp behind ``tgispy serve``, over real HTTP.

One server (4 slots, ``--max-concurrent-requests 4``) serves every test of this module; each
request generates at most a few dozen tokens.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import aiohttp
import jsonschema
import pytest

from tgispy.server._process import ServerHandle

pytestmark = pytest.mark.model

PROMPT = "The capital of France is"
IPV4 = r"((25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(25[0-5]|2[0-4]\d|[01]?\d\d?)"
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def post(server: ServerHandle, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def generate(server: ServerHandle, inputs: str, **parameters: Any) -> dict[str, Any]:
    status, body = post(server, "/generate", {"inputs": inputs, "parameters": parameters})
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def test_greedy_generation_is_deterministic(model_server: ServerHandle, check_schema: Any) -> None:
    first = generate(model_server, PROMPT, max_new_tokens=12, details=True)
    second = generate(model_server, PROMPT, max_new_tokens=12, details=True)
    check_schema("GenerateResponse", first)
    assert first["generated_text"].strip()
    assert first["generated_text"] == second["generated_text"]
    ids = [t["id"] for t in first["details"]["tokens"]]
    assert ids == [t["id"] for t in second["details"]["tokens"]]
    assert first["details"]["seed"] is None
    assert first["details"]["generated_tokens"] == len(ids) <= 12
    assert (
        "".join(t["text"] for t in first["details"]["tokens"] if not t["special"])
        == (first["generated_text"])
    )
    assert all(t["logprob"] <= 0 for t in first["details"]["tokens"])


def test_seeded_sampling_is_deterministic(model_server: ServerHandle) -> None:
    params = {"max_new_tokens": 10, "do_sample": True, "temperature": 0.9, "seed": 1234}
    a = generate(model_server, PROMPT, details=True, **params)
    b = generate(model_server, PROMPT, details=True, **params)
    assert a["generated_text"] == b["generated_text"]
    assert a["details"]["seed"] == 1234


def test_stop_sequence_ends_the_text(model_server: ServerHandle) -> None:
    full = generate(model_server, PROMPT, max_new_tokens=12)["generated_text"]
    words = full.split()
    assert len(words) >= 2, full
    stop = words[1]
    body = generate(model_server, PROMPT, max_new_tokens=12, stop=[stop], details=True)
    text = body["generated_text"]
    assert body["details"]["finish_reason"] == "stop_sequence"
    assert text.endswith(stop)
    assert full.startswith(text)
    assert stop not in text[: -len(stop)]


def test_best_of(model_server: ServerHandle, check_schema: Any) -> None:
    body = generate(model_server, PROMPT, max_new_tokens=6, best_of=2, do_sample=True, details=True)
    check_schema("GenerateResponse", body)
    details = body["details"]
    others = details["best_of_sequences"]
    assert len(others) == 1
    best = sum(t["logprob"] for t in details["tokens"])
    other = sum(t["logprob"] for t in others[0]["tokens"])
    assert best >= other
    assert isinstance(details["seed"], int) and isinstance(others[0]["seed"], int)


def test_json_grammar_output_parses(model_server: ServerHandle) -> None:
    body = generate(
        model_server,
        "Describe a person as JSON:",
        max_new_tokens=48,
        grammar={"type": "json", "value": PERSON},
        details=True,
    )
    assert body["details"]["finish_reason"] == "eos_token", body
    person = json.loads(body["generated_text"])
    jsonschema.validate(person, PERSON)


def test_regex_grammar(model_server: ServerHandle) -> None:
    body = generate(
        model_server,
        "The IP address of the server is",
        max_new_tokens=20,
        grammar={"type": "regex", "value": IPV4},
    )
    assert re.fullmatch(IPV4, body["generated_text"]), body


def test_invalid_grammar_is_422(model_server: ServerHandle) -> None:
    status, body = post(
        model_server,
        "/generate",
        {"inputs": "x", "parameters": {"grammar": {"type": "regex", "value": "a(?=b)"}}},
    )
    assert status == 422
    assert body["error"].startswith("Input validation error: grammar is not valid")


BOMB = "((((a{99}){99}){99}){99})b"


@pytest.mark.parametrize(
    "grammar",
    [
        pytest.param({"type": "regex", "value": BOMB}, id="regex-bomb"),
        pytest.param(
            {"type": "json", "value": {"properties": {"a": {"enum": list(range(100_000))}}}},
            id="enum-100k",
        ),
        pytest.param(
            {"type": "json", "value": {"properties": {"a": {"type": "string", "pattern": BOMB}}}},
            id="pattern-bomb",
        ),
    ],
)
def test_a_grammar_llama_cpp_would_not_apply_is_422(
    model_server: ServerHandle, grammar: dict[str, Any]
) -> None:
    """llama.cpp drops these grammars (or stops applying them) and answered 200 unconstrained."""
    status, body = post(
        model_server,
        "/generate",
        {"inputs": "Write:", "parameters": {"max_new_tokens": 8, "grammar": grammar}},
    )
    assert status == 422, body
    assert body["error_type"] == "validation"
    assert body["error"].startswith("Input validation error: grammar is not valid: ")


def test_streaming_event_order(
    model_server: ServerHandle, check_schema: Any, sse: Callable[[str], list[Any]]
) -> None:
    request = urllib.request.Request(
        model_server.url + "/generate_stream",
        data=json.dumps(
            {"inputs": PROMPT, "parameters": {"max_new_tokens": 8, "details": True}}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        events = sse(resp.read().decode())
    for event in events:
        check_schema("StreamResponse", event)
    assert [e["index"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["details"] is None for e in events[:-1])
    final = events[-1]
    assert final["details"]["generated_tokens"] == len(events)
    assert final["details"]["input_length"] == 5
    text = "".join(e["token"]["text"] for e in events if not e["token"]["special"])
    assert final["generated_text"] == text
    assert text == generate(model_server, PROMPT, max_new_tokens=8)["generated_text"]


def test_validation_errors(model_server: ServerHandle) -> None:
    status, body = post(model_server, "/generate", {"inputs": "x", "parameters": {"top_p": 1.0}})
    assert (status, body["error_type"]) == (422, "validation")
    status, body = post(
        model_server, "/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": 1020}}
    )
    assert status == 422
    assert body["error"] == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 1024. "
        "Given: 5 `inputs` tokens and 1020 `max_new_tokens`"
    )


def test_chat_uses_the_models_template(model_server: ServerHandle, check_schema: Any) -> None:
    status, body = post(
        model_server,
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "Say OK"}], "max_tokens": 8, "temperature": 0},
    )
    assert status == 200
    check_schema("ChatCompletion", body)
    assert body["choices"][0]["message"]["content"]
    # SmolLM2's template adds a system prompt and the <|im_start|> framing
    assert body["usage"]["prompt_tokens"] > 15


async def _stream_times(
    session: aiohttp.ClientSession, url: str, prompt: str, max_new_tokens: int
) -> list[float]:
    """Arrival time of each event of one /generate_stream call."""
    times: list[float] = []
    body = {"inputs": prompt, "parameters": {"max_new_tokens": max_new_tokens}}
    async with session.post(f"{url}/generate_stream", json=body) as resp:
        async for line in resp.content:
            if line.startswith(b"data: "):
                assert b'"error"' not in line, line
                times.append(time.monotonic())
    return times


PROMPTS = [
    "Once upon a time",
    "The best way to learn Python is",
    "Here is a recipe for soup:",
    "In the year 2050, cities will",
]


async def test_concurrent_requests_are_batched(model_server: ServerHandle) -> None:
    n_tokens = 24
    ratios = []
    async with aiohttp.ClientSession() as session:
        await _stream_times(session, model_server.url, PROMPTS[0], 2)  # warm up
        for _ in range(3):
            started = time.monotonic()
            streams = await asyncio.gather(
                *(_stream_times(session, model_server.url, p, n_tokens) for p in PROMPTS)
            )
            concurrent = time.monotonic() - started
            assert all(len(s) == n_tokens for s in streams)
            # served together: every stream has its first token before any stream finishes
            assert max(s[0] for s in streams) < min(s[-1] for s in streams)
            started = time.monotonic()
            for prompt in PROMPTS:
                await _stream_times(session, model_server.url, prompt, n_tokens)
            ratios.append(concurrent / (time.monotonic() - started))
            # On 2 CPU threads this model is compute-bound, so batching 4 gains ~20-30%; the
            # machine may be shared, hence the best of up to 3 tries.
            if min(ratios) < 0.95:
                break
    assert min(ratios) < 0.95, ratios


async def test_overload_beyond_max_concurrent_requests(model_server: ServerHandle) -> None:
    body = {"inputs": "Write a long story:", "parameters": {"max_new_tokens": 200}}
    async with aiohttp.ClientSession() as session:
        streams = [
            await session.post(f"{model_server.url}/generate_stream", json=body) for _ in range(4)
        ]
        try:
            for stream in streams:  # each has produced a token: all 4 permits are taken
                assert (await stream.content.readuntil(b"\n\n")).startswith(b"data: {")
            async with session.post(
                f"{model_server.url}/generate", json={"inputs": "x", "parameters": {}}
            ) as resp:
                assert resp.status == 429
                assert await resp.json() == {
                    "error": "Model is overloaded",
                    "error_type": "overloaded",
                }
        finally:
            for stream in streams:
                stream.close()
        # closing the streams cancels their generations and frees the permits
        for _ in range(100):
            async with session.post(
                f"{model_server.url}/generate",
                json={"inputs": "x", "parameters": {"max_new_tokens": 1}},
            ) as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.05)
        assert resp.status == 200
