"""Ollama's native dialect (v0.32.15): ``/api/generate`` and ``/api/chat``, NDJSON streams.

Sampling lives in ``options`` (``num_predict`` is ``max_tokens``); ``stream`` defaults to true on
the server, so it is always sent; ``n`` is not supported (fan out); ``format`` takes a JSON schema.
Facts: :data:`tgispy.engines._facts.FACTS` ``["ollama"]``; shapes from
``ollama/ollama@v0.32.15:docs/api.md`` and ``api/types.go``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgispy.engines._dialect import (
    Choice,
    Delta,
    Limits,
    Request,
    Result,
    StreamFormat,
    apply_stops,
    decode_json,
    unsupported_constraint,
)
from tgispy.engines._errors import engine_error, error_from_payload
from tgispy.engines._facts import FACTS, EngineFacts
from tgispy.errors import MalformedResponseError, TGIError

__all__ = ["OllamaDialect"]

#: request keys that sit next to ``options`` rather than inside it (api/types.go GenerateRequest,
#: ChatRequest); every other extra key is an option (num_ctx, repeat_penalty, ...)
_TOP_LEVEL = frozenset(
    {"system", "template", "raw", "keep_alive", "think", "truncate", "shift", "suffix", "format"}
)


def _finish(raw: Any) -> str | None:
    # done_reason: stop | length | load | unload (llm/server.go); load/unload carry no text
    if raw in ("stop", "length"):
        return str(raw)
    return str(raw) if isinstance(raw, str) and raw else None


def _usage(data: Mapping[str, Any]) -> dict[str, int] | None:
    prompt = data.get("prompt_eval_count")
    completion = data.get("eval_count")
    usage: dict[str, int] = {}
    if isinstance(prompt, int) and not isinstance(prompt, bool):
        usage["prompt_tokens"] = prompt  # includes cached tokens (llm/llama_server.go L1511)
    if isinstance(completion, int) and not isinstance(completion, bool):
        usage["completion_tokens"] = completion
    if len(usage) == 2:
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage or None


@dataclass(frozen=True)
class OllamaDialect:
    """Ollama's native API.

    Example:
        >>> path, body = OllamaDialect().build(Request(model="llama3.2", prompt="Hi",
        ...                                            max_tokens=8, stop=("\\n",)))
        >>> path, body["stream"], body["options"]
        ('/api/generate', False, {'num_predict': 8, 'temperature': 0.0, 'stop': ['\\n']})
    """

    facts: EngineFacts = FACTS["ollama"]
    stream_format: StreamFormat = "ndjson"

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def health_path(self) -> str:
        return self.facts.health_path

    @property
    def limits_path(self) -> str | None:
        return None  # /api/show is a POST: see show_request()

    @property
    def constraint_kinds(self) -> frozenset[str]:
        return self.facts.constraint_kinds

    def server_n(self, request: Request, limits: Limits | None) -> int:
        return 1  # n is ignored by Ollama: always fan out

    def show_request(self, model: str) -> tuple[str, dict[str, Any]]:
        """``POST /api/show`` for ``model``'s context length and capabilities."""
        return "/api/show", {"model": model}

    def build(self, request: Request) -> tuple[str, dict[str, Any]]:
        """``/api/generate`` (prompt) or ``/api/chat`` (messages) with ``options``."""
        body: dict[str, Any] = {"model": request.model or ""}
        if request.messages is not None:
            path = "/api/chat"
            body["messages"] = [dict(m) for m in request.messages]
        else:
            path = "/api/generate"
            body["prompt"] = request.prompt
        body["stream"] = request.stream
        options: dict[str, Any] = {}
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        options["temperature"] = float(request.temperature) if request.temperature else 0.0
        for key in ("top_p", "top_k", "seed", "frequency_penalty", "presence_penalty"):
            value = getattr(request, key)
            if value is not None:
                options[key] = value
        if request.stop:
            options["stop"] = list(request.stop)
        for key, value in request.extra.items():
            if key == "system" and request.messages is not None:
                # /api/chat has no "system" field: it is the conversation's first message
                body["messages"].insert(0, {"role": "system", "content": value})
            elif key in _TOP_LEVEL:
                body[key] = value
            elif key == "options" and isinstance(value, Mapping):
                options.update(value)
            else:
                options[key] = value
        if request.constraint is not None:
            # after the extras: a schema is more specific than a default format="json"
            if request.constraint.kind != "json":
                raise unsupported_constraint(self.name, request.constraint, self.constraint_kinds)
            body["format"] = request.constraint.value
        body["options"] = options
        return path, body

    def _text(self, request: Request, data: Mapping[str, Any]) -> str:
        if request.is_chat:
            message = data.get("message")
            text = message.get("content") if isinstance(message, Mapping) else None
        else:
            text = data.get("response")
        if text is None:
            return ""
        if not isinstance(text, str):
            raise MalformedResponseError(f"ollama response text is not a string: {text!r}"[:300])
        return text

    def parse(self, request: Request, body: bytes | str) -> Result:
        """A ``"stream": false`` response: one object with ``response`` or ``message``."""
        data = decode_json(body, what="ollama response")
        if not isinstance(data, Mapping):
            raise MalformedResponseError(f"ollama response is not an object: {str(data)[:200]!r}")
        if "error" in data:
            raise error_from_payload(self.name, data, markers=self.facts.context_markers)
        text, matched = apply_stops(self._text(request, data), request.stop)
        finish = "stop" if matched is not None else _finish(data.get("done_reason"))
        model = data.get("model")
        return Result(
            choices=(Choice(text=text, finish_reason=finish, matched_stop=matched),),
            usage=_usage(data),
            model=model if isinstance(model, str) else None,
        )

    def parse_event(self, request: Request, data: str) -> list[Delta]:
        """One NDJSON line: text so far, or the final ``done: true`` object, or an error line."""
        if not data.strip():
            return []
        event = decode_json(data, what="ollama stream line")
        if not isinstance(event, Mapping):
            raise MalformedResponseError(f"ollama stream line is not an object: {data[:200]!r}")
        if "error" in event:
            # a mid-stream error is a line {"error": "..."} inside a 200 (server/routes.go)
            raise error_from_payload(self.name, event, markers=self.facts.context_markers)
        text = self._text(request, event)
        if event.get("done") is True:
            return [
                Delta(
                    text=text,
                    finish_reason=_finish(event.get("done_reason")),
                    usage=_usage(event),
                    done=True,
                )
            ]
        return [Delta(text=text)]

    def error(
        self,
        status: int,
        body: bytes | str,
        *,
        replica: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TGIError:
        """``{"error": "..."}`` with its status (404 unknown model, 503 busy, 400 context)."""
        err = engine_error(
            self.name,
            status,
            body,
            replica=replica,
            headers=headers,
            markers=self.facts.context_markers,
        )
        if status == 404 and "not found" in err.message:
            err.message += " (run `ollama pull <model>` on the server, or pass a pulled model)"
            err.args = (err.message,)
        return err

    def check_model(self, model: str | None, limits: Limits | None) -> str | None:
        """Ollama's 404 names an unknown model itself; nothing is listed before the call."""
        return None

    def parse_limits(self, body: bytes | str) -> Limits:
        """``POST /api/show``: the trained context length, ``num_ctx`` and capabilities."""
        data = decode_json(body, what="ollama /api/show response")
        if not isinstance(data, Mapping):
            data = {}
        info = data.get("model_info")
        context: int | None = None
        if isinstance(info, Mapping):
            arch = info.get("general.architecture")
            value = info.get(f"{arch}.context_length")
            context = value if isinstance(value, int) else None
        num_ctx: int | None = None
        parameters = data.get("parameters")
        if isinstance(parameters, str):
            for line in parameters.splitlines():
                name, _, value_text = line.strip().partition(" ")
                if name == "num_ctx" and value_text.strip().isdigit():
                    num_ctx = int(value_text.strip())
        capabilities = data.get("capabilities")
        return Limits(
            context_length=num_ctx or context,
            max_n=1,
            extra={
                "trained_context_length": context,
                "capabilities": list(capabilities) if isinstance(capabilities, list) else [],
            },
        )
