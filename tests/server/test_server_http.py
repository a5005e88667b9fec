"""TGI's HTTP protocol over the sim backend, in-process: shapes, errors, limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from tgispy.server import SimConfig
from tgispy.server._app import FRONT_KEY

Client = TestClient[Any, Any]
ANSWER = "The answer is 42."
ANSWER_TOKENS = ["The", " answer", " is", " 42", "."]


async def test_generate_with_details(sim_client: Client, check_schema: Any) -> None:
    resp = await sim_client.post(
        "/generate", json={"inputs": "Hi there", "parameters": {"details": True}}
    )
    assert resp.status == 200
    body = await resp.json()
    check_schema("GenerateResponse", body)
    assert body["generated_text"] == ANSWER
    details = body["details"]
    # the script ends before max_new_tokens: EOS closes it, as a special token
    assert details["finish_reason"] == "eos_token"
    assert [t["text"] for t in details["tokens"]][:-1] == ANSWER_TOKENS
    assert details["tokens"][-1]["special"] is True
    assert details["generated_tokens"] == len(ANSWER_TOKENS) + 1
    assert details["seed"] is None
    assert details["prefill"] == []
    assert "best_of_sequences" not in details and "top_tokens" not in details
    assert resp.headers["x-prompt-tokens"] == "2"
    assert resp.headers["x-generated-tokens"] == str(len(ANSWER_TOKENS) + 1)
    assert resp.headers["x-compute-characters"] == "8"
    for header in ("x-compute-time", "x-total-time", "x-inference-time", "x-time-per-token"):
        float(resp.headers[header])


async def test_generate_without_details_is_just_the_text(sim_client: Client) -> None:
    resp = await sim_client.post("/generate", json={"inputs": "x", "parameters": {}})
    assert await resp.json() == {"generated_text": ANSWER}


async def test_max_new_tokens_and_return_full_text(sim_client: Client) -> None:
    resp = await sim_client.post(
        "/generate",
        json={
            "inputs": "Q: ",
            "parameters": {"max_new_tokens": 2, "return_full_text": True, "details": True},
        },
    )
    body = await resp.json()
    assert body["generated_text"] == "Q: The answer"
    assert body["details"]["finish_reason"] == "length"
    assert body["details"]["generated_tokens"] == 2


async def test_stop_sequence_is_kept_at_the_end(sim_client: Client) -> None:
    resp = await sim_client.post(
        "/generate", json={"inputs": "x", "parameters": {"stop": [" is"], "details": True}}
    )
    body = await resp.json()
    assert body["generated_text"] == "The answer is"
    assert body["details"]["finish_reason"] == "stop_sequence"


async def test_compat_route_returns_a_list_and_defaults_to_full_text(
    sim_client: Client, check_schema: Any
) -> None:
    resp = await sim_client.post("/", json={"inputs": "Q: ", "parameters": {"max_new_tokens": 1}})
    body = await resp.json()
    assert isinstance(body, list) and len(body) == 1
    check_schema("GenerateResponse", body[0])
    assert body[0]["generated_text"] == "Q: The"


async def test_generate_stream_event_order(
    sim_client: Client, check_schema: Any, sse: Callable[[str], list[Any]]
) -> None:
    resp = await sim_client.post(
        "/generate_stream",
        json={"inputs": "Hi", "parameters": {"max_new_tokens": 3, "details": True}},
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["x-compute-characters"] == "2"
    raw = await resp.text()
    assert raw.startswith("data: {")
    events = sse(raw)
    for event in events:
        check_schema("StreamResponse", event)
    assert [e["index"] for e in events] == [1, 2, 3]
    assert [e["token"]["text"] for e in events] == ANSWER_TOKENS[:3]
    assert all(e["generated_text"] is None and e["details"] is None for e in events[:-1])
    final = events[-1]
    assert final["generated_text"] == "The answer is"
    assert final["details"] == {
        "finish_reason": "length",
        "generated_tokens": 3,
        "seed": None,
        "input_length": 1,
    }


async def test_stream_without_details_has_null_details(
    sim_client: Client, sse: Callable[[str], list[Any]]
) -> None:
    resp = await sim_client.post("/generate_stream", json={"inputs": "Hi", "parameters": {}})
    events = sse(await resp.text())
    assert events[-1]["details"] is None
    assert events[-1]["generated_text"] == ANSWER
    assert events[-1]["token"]["special"] is True


async def test_compat_route_streams(sim_client: Client, sse: Callable[[str], list[Any]]) -> None:
    resp = await sim_client.post(
        "/", json={"inputs": "Q", "stream": True, "parameters": {"max_new_tokens": 2}}
    )
    events = sse(await resp.text())
    assert events[-1]["generated_text"] == "QThe answer"


async def test_best_of_returns_other_sequences(sim_client: Client, check_schema: Any) -> None:
    resp = await sim_client.post(
        "/generate",
        json={
            "inputs": "x",
            "parameters": {"best_of": 2, "do_sample": True, "details": True, "max_new_tokens": 2},
        },
    )
    body = await resp.json()
    check_schema("GenerateResponse", body)
    others = body["details"]["best_of_sequences"]
    assert len(others) == 1
    assert others[0]["generated_text"] == "The answer"
    assert isinstance(body["details"]["seed"], int)
    assert isinstance(others[0]["seed"], int)


async def test_top_n_tokens(sim_client: Client, sse: Callable[[str], list[Any]]) -> None:
    resp = await sim_client.post(
        "/generate",
        json={
            "inputs": "x",
            "parameters": {"max_new_tokens": 2, "top_n_tokens": 3, "details": True},
        },
    )
    body = await resp.json()
    top = body["details"]["top_tokens"]
    assert len(top) == 2 and all(len(step) == 3 for step in top)
    assert top[0][0]["text"] == "The"
    resp = await sim_client.post(
        "/generate_stream",
        json={"inputs": "x", "parameters": {"max_new_tokens": 2, "top_n_tokens": 2}},
    )
    events = sse(await resp.text())
    assert all(len(e["top_tokens"]) == 2 for e in events)


async def test_truncate_keeps_the_last_tokens(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(echo=True))
    resp = await client.post(
        "/generate",
        json={"inputs": "one two three four", "parameters": {"truncate": 2, "details": True}},
    )
    body = await resp.json()
    assert body["generated_text"] == " three four"
    assert resp.headers["x-prompt-tokens"] == "2"


async def test_validation_error_is_tgi_json(sim_client: Client, check_schema: Any) -> None:
    resp = await sim_client.post("/generate", json={"inputs": "x", "parameters": {"top_p": 1.0}})
    assert resp.status == 422
    body = await resp.json()
    check_schema("ErrorResponse", body)
    assert body == {
        "error": "Input validation error: `top_p` must be > 0.0 and < 1.0",
        "error_type": "validation",
    }


async def test_length_limits(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(max_total_tokens=8, max_input_tokens=4)
    resp = await client.post(
        "/generate", json={"inputs": "a b c", "parameters": {"max_new_tokens": 6}}
    )
    assert resp.status == 422
    assert (await resp.json())["error"] == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8. "
        "Given: 3 `inputs` tokens and 6 `max_new_tokens`"
    )
    resp = await client.post("/generate", json={"inputs": "a b c d e", "parameters": {}})
    assert (await resp.json())["error"] == (
        "Input validation error: `inputs` must have less than 4 tokens. Given: 5"
    )
    # absent max_new_tokens: up to max_total_tokens
    resp = await client.post("/generate", json={"inputs": "a b", "parameters": {"details": True}})
    assert (await resp.json())["details"]["generated_tokens"] == 6


async def test_axum_rejections(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(payload_limit=200)
    resp = await client.post("/generate", json={"inputs": 1})
    assert resp.status == 422
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert (await resp.text()) == (
        "Failed to deserialize the JSON body into the target type: "
        "inputs: invalid type: integer `1`, expected a string"
    )
    resp = await client.post(
        "/generate", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.text()).startswith("Failed to parse the request body as JSON: ")
    resp = await client.post("/generate", data=b'{"inputs": "x"}')
    assert resp.status == 415
    assert (await resp.text()) == "Expected request with `Content-Type: application/json`"
    resp = await client.post("/generate", json={"inputs": "x" * 500})
    assert resp.status == 413
    assert (await resp.text()) == "Failed to buffer the request body: length limit exceeded"


async def test_stream_errors_arrive_as_events(
    sim_client: Client, sse: Callable[[str], list[Any]]
) -> None:
    resp = await sim_client.post(
        "/generate_stream", json={"inputs": "x", "parameters": {"temperature": 0}}
    )
    assert resp.status == 200
    assert sse(await resp.text()) == [
        {
            "error": "Input validation error: `temperature` must be strictly positive",
            "error_type": "validation",
        }
    ]
    resp = await sim_client.post(
        "/generate_stream", json={"inputs": "x", "parameters": {"best_of": 2}}
    )
    assert sse(await resp.text())[0]["error"] == (
        "Input validation error: `best_of` != 1 is not supported when streaming tokens"
    )


async def test_overload_is_429_and_a_stream_event(
    sim_client_factory: Any, sse: Callable[[str], list[Any]]
) -> None:
    client: Client = await sim_client_factory(
        SimConfig(token_latency_s=0.01), max_concurrent_requests=1
    )
    busy = await client.post(
        "/generate_stream", json={"inputs": "x", "parameters": {"max_new_tokens": 50}}
    )
    await busy.content.readuntil(b"\n\n")  # it is generating: its permit is taken
    resp = await client.post("/generate", json={"inputs": "x", "parameters": {}})
    assert resp.status == 429
    assert await resp.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    resp = await client.post("/generate_stream", json={"inputs": "x", "parameters": {}})
    assert resp.status == 200
    assert sse(await resp.text()) == [{"error": "Model is overloaded", "error_type": "overloaded"}]
    # best_of=2 needs two permits
    busy.close()
    await asyncio.sleep(0.05)
    front = client.app[FRONT_KEY]
    assert front.in_flight == 0
    resp = await client.post(
        "/generate", json={"inputs": "x", "parameters": {"best_of": 2, "do_sample": True}}
    )
    assert resp.status == 429


async def test_chat_completion(sim_client: Client, check_schema: Any) -> None:
    resp = await sim_client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 0},
    )
    body = await resp.json()
    check_schema("ChatCompletion", body)
    assert body["object"] == "chat.completion"
    assert body["id"] == ""
    assert body["model"] == "tgispy/sim"
    assert body["system_fingerprint"].endswith("-native")
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "The answer is"}
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}


async def test_chat_eos_is_stop_and_logprobs(sim_client: Client) -> None:
    resp = await sim_client.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "Hi"}],
            "logprobs": True,
            "top_logprobs": 2,
            "model": "my-model",
        },
    )
    body = await resp.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert body["model"] == "my-model"
    content = choice["logprobs"]["content"]
    assert content[0]["token"] == "The"
    assert len(content[0]["top_logprobs"]) == 2


async def test_chat_stream_with_usage(
    sim_client: Client, check_schema: Any, sse: Callable[[str], list[Any]]
) -> None:
    resp = await sim_client.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    events = sse(await resp.text())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for chunk in chunks:
        check_schema("ChatCompletionChunk", chunk)
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks[:-1]) == ANSWER
    last_token = chunks[-2]["choices"][0]
    assert last_token["finish_reason"] == "stop"
    assert last_token["delta"]["content"] == ""  # EOS
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(ANSWER_TOKENS) + 1


async def test_chat_stream_error_event(sim_client: Client, sse: Callable[[str], list[Any]]) -> None:
    resp = await sim_client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "stream": True, "top_p": 1.0},
    )
    events = sse(await resp.text())
    assert events == [
        {
            "error": {
                "message": "Input validation error: `top_p` must be > 0.0 and < 1.0",
                "http_status_code": 422,
            }
        },
        "[DONE]",
    ]


async def test_chat_tools_are_refused_clearly(sim_client: Client) -> None:
    resp = await sim_client.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        },
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["error_type"] == "tool_error"
    assert body["error"].startswith("Tool error: ")


async def test_completions(sim_client: Client, check_schema: Any) -> None:
    resp = await sim_client.post(
        "/v1/completions", json={"prompt": ["a", "b c"], "max_tokens": 2, "temperature": 0}
    )
    body = await resp.json()
    check_schema("CompletionFinal", body)
    assert body["object"] == "text_completion"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert all(c["text"] == "The answer" for c in body["choices"])
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


async def test_completions_stream(
    sim_client: Client, check_schema: Any, sse: Callable[[str], list[Any]]
) -> None:
    resp = await sim_client.post(
        "/v1/completions", json={"prompt": ["a", "b"], "max_tokens": 2, "stream": True}
    )
    events = sse(await resp.text())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for chunk in chunks:
        check_schema("Chunk", chunk)
    finals = [c for c in chunks if c["choices"][0]["finish_reason"]]
    assert sorted(c["choices"][0]["index"] for c in finals) == [0, 1]
    assert all(c["usage"]["completion_tokens"] == 2 for c in finals)
    middles = [c for c in chunks if not c["choices"][0]["finish_reason"]]
    assert all(c["choices"][0]["finish_reason"] == "" and "usage" not in c for c in middles)


async def test_completions_rejections(sim_client: Client) -> None:
    resp = await sim_client.post("/v1/completions", json={"prompt": "a", "suffix": "z"})
    assert resp.status == 422
    assert (await resp.json())["error_type"] == "suffix not supported"
    resp = await sim_client.post("/v1/completions", json={"prompt": ["a"] * 5})
    assert await resp.json() == {
        "error": "Number of prompts exceeds the maximum allowed batch size of 4",
        "error_type": "batch size exceeded",
    }


async def test_info_health_models_metrics_tokenize(sim_client: Client, check_schema: Any) -> None:
    info = await (await sim_client.get("/info")).json()
    check_schema("Info", info)
    assert info["model_id"] == "tgispy/sim"
    assert info["version"] == "3.3.6-tgispy"
    assert info["max_concurrent_requests"] == 128
    assert info["max_input_tokens"] == 2047 and info["max_total_tokens"] == 2048
    health = await sim_client.get("/health")
    assert health.status == 200
    models = await (await sim_client.get("/v1/models")).json()
    assert models["data"][0]["id"] == "tgispy/sim"
    await sim_client.post("/generate", json={"inputs": "x", "parameters": {}})
    await sim_client.post("/generate", json={"inputs": "x", "parameters": {"top_k": 0}})
    metrics = await sim_client.get("/metrics")
    text = await metrics.text()
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert "tgi_request_count 2" in text
    assert "tgi_request_success 1" in text
    assert 'tgi_request_failure{err="validation"} 1' in text
    assert "tgi_request_duration_count 1" in text
    tokens = await (await sim_client.post("/tokenize", json={"inputs": "Hello, world"})).json()
    check_schema("TokenizeResponse", tokens)
    assert [(t["text"], t["start"], t["stop"]) for t in tokens] == [
        ("Hello", 0, 5),
        (",", 5, 6),
        (" world", 6, 12),
    ]


async def test_health_follows_the_backend(sim_client: Client) -> None:
    backend = sim_client.app[FRONT_KEY].backend
    backend.set_healthy(False)
    resp = await sim_client.get("/health")
    assert resp.status == 503
    assert await resp.json() == {"error": "unhealthy", "error_type": "healthcheck"}
    backend.set_healthy(True)
    assert (await sim_client.get("/health")).status == 200


async def test_capacity_queues_requests_in_order(
    sim_client_factory: Any, sse: Callable[[str], list[Any]]
) -> None:
    client: Client = await sim_client_factory(SimConfig(capacity=1, token_latency_s=0.005))
    order: list[tuple[int, int]] = []

    async def run(i: int) -> None:
        resp = await client.post(
            "/generate_stream", json={"inputs": "x", "parameters": {"max_new_tokens": 3}}
        )
        async for line in resp.content:
            if line.startswith(b"data: "):
                order.append((i, json.loads(line[6:])["index"]))

    first = asyncio.create_task(run(0))
    await asyncio.sleep(0.002)
    await asyncio.gather(first, run(1))
    # with one slot the second stream starts only after the first has finished
    assert order == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]


async def test_scripted_texts_cycle_and_responder(sim_client_factory: Any) -> None:
    client: Client = await sim_client_factory(SimConfig(texts=("one", "two")))
    texts = []
    for _ in range(3):
        resp = await client.post("/generate", json={"inputs": "x", "parameters": {}})
        texts.append((await resp.json())["generated_text"])
    assert texts == ["one", "two", "one"]
    upper: Client = await sim_client_factory(SimConfig(responder=str.upper))
    resp = await upper.post("/generate", json={"inputs": "shout", "parameters": {}})
    assert (await resp.json())["generated_text"] == "SHOUT"


async def test_an_empty_completions_batch_has_no_choices(
    sim_client: Client, sse: Callable[[str], list[Any]]
) -> None:
    resp = await sim_client.post("/v1/completions", json={"prompt": [], "max_tokens": 2})
    assert resp.status == 200
    body = await resp.json()
    assert body["choices"] == []
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    resp = await sim_client.post(
        "/v1/completions", json={"prompt": [], "max_tokens": 2, "stream": True}
    )
    assert resp.status == 200
    assert sse(await resp.text()) == ["[DONE]"]


async def test_requests_rejected_before_validation_are_not_counted_as_requests(
    sim_client: Client,
) -> None:
    """As TGI: axum rejects a body that is not JSON before the handler (and its counter) runs."""
    resp = await sim_client.post(
        "/generate", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    resp = await sim_client.post("/v1/chat/completions", json={"messages": 5})
    assert resp.status == 422
    resp = await sim_client.post("/generate", json={"inputs": "x", "parameters": {"top_p": 2}})
    assert resp.status == 422
    text = await (await sim_client.get("/metrics")).text()
    assert "tgi_request_count 1" in text
    assert 'tgi_request_failure{err="bad_json"} 1' in text
    assert 'tgi_request_failure{err="deserialize"} 1' in text
    assert 'tgi_request_failure{err="validation"} 1' in text
