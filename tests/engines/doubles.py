"""In-process doubles of vLLM, SGLang and Ollama, built from their documented shapes.

Each double is a handler for :class:`tgispy.testing.MockTransport` that enforces the engine's
request rules (what it rejects, what it silently ignores) and answers in its shapes. Sources:
tests/engines/README.md and /work/shared/engines/facts.json (``vllm``, ``sglang``, ``ollama``).
The text each double generates comes from a ``respond(prompt_or_messages, body) -> str`` function
the test passes in; stop strings are cut as the engines cut them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tgispy.engines import apply_stops
from tgispy.testing import Recorded, Reply

Respond = Callable[[Any, dict[str, Any]], str]


def _usage(n_choices: int) -> dict[str, int]:
    return {
        "prompt_tokens": 9,
        "completion_tokens": 2 * n_choices,
        "total_tokens": 9 + 2 * n_choices,
    }


def _constrained(text: str, body: dict[str, Any], keys: dict[str, str]) -> str:
    """The double's stand-in for constrained decoding: a value that satisfies the constraint."""
    if keys.get("json") in body or keys.get("json_obj") in body:
        schema = body.get(keys.get("json", ""), body.get(keys.get("json_obj", "")))
        if isinstance(schema, str):
            schema = json.loads(schema)
        return json.dumps(_example(schema))
    if keys.get("regex") in body:
        pattern = body[keys["regex"]]
        for candidate in ("4", "true", "yes", "positive", "red", text):
            if re.fullmatch(pattern, candidate):
                return candidate
    if keys.get("choice") in body:
        return str(body[keys["choice"]][0])
    return text


def _example(schema: Any) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {k: _example(v) for k, v in schema.get("properties", {}).items()}
    return {"integer": 4, "number": 4.5, "boolean": True, "array": []}.get(str(kind), "x")


def _openai_choices(
    texts: list[str], body: dict[str, Any], chat: bool, match_key: str
) -> list[Any]:
    out = []
    for i, raw in enumerate(texts):
        text, matched = apply_stops(raw, body.get("stop") or [])
        finish = "stop" if matched is not None or len(raw) < 40 else "length"
        choice: dict[str, Any] = {"index": i, "finish_reason": finish, match_key: matched}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        out.append(choice)
    return out


def _sse(choices: list[dict[str, Any]], chat: bool) -> Reply:
    events: list[Any] = []
    for choice in choices:
        text = choice["message"]["content"] if chat else choice["text"]
        for piece in re.findall(r"\S+\s*|\s+", text):
            delta = {"delta": {"content": piece}} if chat else {"text": piece}
            events.append({"choices": [{"index": choice["index"], **delta, "finish_reason": None}]})
        end = {"delta": {}} if chat else {"text": ""}
        events.append(
            {
                "choices": [
                    {"index": choice["index"], **end, "finish_reason": choice["finish_reason"]}
                ]
            }
        )
    events.append({"choices": [], "usage": _usage(len(choices))})
    events.append("[DONE]")
    return Reply(200, sse=tuple(events))


def vllm(
    respond: Respond, *, model: str = "m", max_model_len: int = 4096
) -> Callable[[Recorded], Reply]:
    """vLLM 0.33.0: greedy with n>1 is a 400, at most 4 stop strings, guided_* ignored."""

    def error(status: int, message: str, kind: str = "BadRequestError") -> Reply:
        return Reply(
            status, {"error": {"message": message, "type": kind, "param": None, "code": status}}
        )

    def handle(req: Recorded) -> Reply:
        if req.method == "GET" and req.path == "/v1/models":
            card = {"id": model, "object": "model", "created": 1, "owned_by": "vllm",
                    "root": model, "parent": None, "max_model_len": max_model_len}  # fmt: skip
            return Reply(200, {"object": "list", "data": [card]})
        if req.method == "GET":
            if req.path == "/version":
                return Reply(200, {"version": "0.33.0"})
            return Reply(404, {"detail": "Not Found"})  # FastAPI's 404
        body: dict[str, Any] = req.json
        if body.get("model") not in (None, "", model):
            return error(
                404,
                f"The model `{body['model']}` does not exist. Valid aliases: {model}.",
                "NotFoundError",
            )
        n = body.get("n", 1)
        if body.get("temperature", 1.0) < 1e-5 and n > 1:
            return error(400, f"n must be 1 when using greedy sampling, got {n}.")
        if len(body.get("stop") or []) > 4:
            return error(400, "1 validation error:\n  stop: at most 4 items")
        chat = req.path.endswith("/chat/completions")
        source = body["messages"] if chat else body["prompt"]
        if len(str(source)) > max_model_len:
            return error(
                400,
                f"This model's maximum context length is {max_model_len} tokens. However, your "
                "prompt contains 9999 input tokens, which exceeds this limit even without any "
                "output tokens. Please reduce the length of the input prompt.",
            )
        structured = body.get("structured_outputs") or {}
        texts = [
            _constrained(
                respond(source, body),
                structured,
                {"json": "json", "regex": "regex", "choice": "choice"},
            )
            for _ in range(n)
        ]
        choices = _openai_choices(texts, body, chat, "stop_reason")
        if body.get("stream"):
            return _sse(choices, chat)
        kind = "chat.completion" if chat else "text_completion"
        return Reply(200, {"id": "cmpl-1", "object": kind, "model": model,
                           "choices": choices, "usage": _usage(n)})  # fmt: skip

    return handle


def sglang(respond: Respond, *, max_model_len: int = 4096) -> Callable[[Recorded], Reply]:
    """SGLang 0.5.23: top_k 0 is a 400, json_schema must be a string, errors are flat."""

    def error(status: int, message: str) -> Reply:
        return Reply(status, {"object": "error", "message": message, "type": "BadRequest",
                              "param": None, "code": status})  # fmt: skip

    def handle(req: Recorded) -> Reply:
        if req.method == "GET" and req.path == "/v1/models":
            card = {"id": "default", "object": "model", "created": 1, "owned_by": "sglang",
                    "root": "default", "parent": None, "max_model_len": max_model_len}  # fmt: skip
            return Reply(200, {"object": "list", "data": [card]})
        if req.method == "GET":
            return Reply(404, {"detail": "Not Found"})
        body: dict[str, Any] = req.json
        if body.get("top_k") == 0:
            return error(400, "top_k must be -1 (disable) or at least 1, got 0.")
        if "json_schema" in body and not isinstance(body["json_schema"], str):
            return error(400, "1 validation error: json_schema: Input should be a valid string")
        n = body.get("n", 1)
        chat = req.path.endswith("/chat/completions")
        source = body["messages"] if chat else body["prompt"]
        texts = [
            _constrained(respond(source, body), body, {"json": "json_schema", "regex": "regex"})
            for _ in range(n)
        ]
        choices = _openai_choices(texts, body, chat, "matched_stop")
        if body.get("stream"):
            return _sse(choices, chat)
        return Reply(200, {"id": "1", "object": "text_completion", "model": body.get("model"),
                           "choices": choices, "usage": _usage(n)})  # fmt: skip

    return handle


def ollama(
    respond: Respond, *, models: tuple[str, ...] = ("llama3.2",)
) -> Callable[[Recorded], Reply]:
    """Ollama v0.32.15 native API: options, num_predict, format; n ignored; NDJSON streams."""

    def handle(req: Recorded) -> Reply:
        if req.method == "GET" and req.path == "/":
            return Reply(200, b"Ollama is running")
        if req.method == "GET" and req.path == "/api/version":
            return Reply(200, {"version": "0.32.15"})
        if req.method == "GET" and req.path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 1, "owned_by": "library"} for m in models
            ]
            return Reply(200, {"object": "list", "data": data})
        if req.method == "GET":
            return Reply(404, b"404 page not found")
        body: dict[str, Any] = req.json
        if req.path == "/api/show":
            return Reply(200, {"parameters": "num_ctx 2048", "capabilities": ["completion"],
                               "model_info": {"general.architecture": "llama",
                                              "llama.context_length": 131072}})  # fmt: skip
        if body.get("model") not in models:
            return Reply(404, {"error": f"model '{body.get('model')}' not found"})
        stream = body.get("stream", True)
        chat = req.path == "/api/chat"
        source = body["messages"] if chat else body["prompt"]
        options = body.get("options", {})
        text = respond(source, body)
        if "format" in body and isinstance(body["format"], dict):
            text = json.dumps(_example(body["format"]))
        text, _ = apply_stops(text, options.get("stop") or [])
        out: dict[str, Any] = {"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                               "done": True, "done_reason": "stop", "prompt_eval_count": 9,
                               "eval_count": 2, "total_duration": 1000}  # fmt: skip
        if stream:
            # NDJSON (docs/api.md "Streaming responses"): one object per piece with done: false,
            # then the final object with done: true, done_reason and the counts, empty text
            lines = []
            for piece in re.findall(r"\s*\S+", text) or [text]:
                part: dict[str, Any] = {"model": body["model"], "done": False}
                if chat:
                    part["message"] = {"role": "assistant", "content": piece}
                else:
                    part["response"] = piece
                lines.append(json.dumps(part).encode() + b"\n")
            if chat:
                out["message"] = {"role": "assistant", "content": ""}
            else:
                out["response"] = ""
            lines.append(json.dumps(out).encode() + b"\n")
            return Reply(200, sse=tuple(lines), headers={"Content-Type": "application/x-ndjson"})
        if chat:
            out["message"] = {"role": "assistant", "content": text}
        else:
            out["response"] = text
        return Reply(200, out)

    return handle
