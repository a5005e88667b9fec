"""The OpenAI-compatible dialect: ``/v1/completions`` and ``/v1/chat/completions``.

:class:`OpenAIDialect` speaks the contract every OpenAI-compatible server copies (OpenAI's API
reference, ``openai/openai-openapi``); vLLM, SGLang and llama.cpp are subclasses that override
only what their engine does differently (sampling fields, constraints, the matched stop string,
limits). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgispy.engines._dialect import (
    Choice,
    Constraint,
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

__all__ = ["OpenAIDialect", "parse_usage"]


_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def parse_usage(raw: Any) -> dict[str, int] | None:
    """OpenAI's ``usage`` object in the neutral shape (``cached_tokens`` when reported).

    Example:
        >>> parse_usage({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
        ...              "prompt_tokens_details": {"cached_tokens": 4}})
        {'prompt_tokens': 5, 'completion_tokens': 2, 'total_tokens': 7, 'cached_tokens': 4}
    """
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return None
    usage: dict[str, int] = {}
    for key in _USAGE_KEYS:
        value = raw.get(key)
        if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
            usage[key] = value
    if "total_tokens" not in usage and {"prompt_tokens", "completion_tokens"} <= set(usage):
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    details = raw.get("prompt_tokens_details")
    if isinstance(details, Mapping):
        cached = details.get("cached_tokens")
        if isinstance(cached, int) and not isinstance(cached, bool):
            usage["cached_tokens"] = cached
    return usage or None


def _index(choice: Choice) -> int:
    return choice.index


def _finish(raw: Any) -> str | None:
    # "eos"/"eos_token"/"stop_sequence" are other engines' words for "stop" (TGI, llama.cpp native)
    if raw in ("eos", "eos_token", "stop_sequence", "word"):
        return "stop"
    if raw == "limit":
        return "length"
    return str(raw) if isinstance(raw, str) and raw else None


@dataclass(frozen=True)
class OpenAIDialect:
    """Requests and responses of an OpenAI-compatible server.

    Args:
        prefix: the path prefix of the API under the replica's base URL: ``"/v1"`` for a server
            root (``http://host:8000``), ``""`` for an ``api_base`` that already ends in ``/v1``.

    Example:
        >>> d = OpenAIDialect(prefix="")
        >>> d.build(Request(model="gpt-4o-mini", prompt="Hi", max_tokens=5))[1]
        {'model': 'gpt-4o-mini', 'prompt': 'Hi', 'max_tokens': 5, 'temperature': 0.0}
    """

    prefix: str = "/v1"
    facts: EngineFacts = FACTS["openai"]
    stream_format: StreamFormat = "sse"

    # ---- declared capabilities ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def health_path(self) -> str:
        path = self.facts.health_path
        return self.prefix + path if self.facts.name == "openai" else path

    @property
    def limits_path(self) -> str | None:
        path = self.facts.limits_path
        if path is None or self.facts.name != "openai":
            return path
        return self.prefix + path

    @property
    def constraint_kinds(self) -> frozenset[str]:
        return self.facts.constraint_kinds

    def server_n(self, request: Request, limits: Limits | None) -> int:
        """How many choices one request may ask for; ``1`` means fan out."""
        if not self.facts.server_n or (request.greedy and not self.facts.greedy_n):
            return 1
        if limits is not None and limits.max_n is not None:
            return max(1, min(request.n, limits.max_n))
        return request.n

    # ---- requests -----------------------------------------------------------------------------
    def build(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The path and JSON body for ``request`` (``n`` as given: the caller splits it)."""
        body: dict[str, Any] = {}
        if request.model:
            body["model"] = request.model
        if request.messages is not None:
            path = self.prefix + "/chat/completions"
            body["messages"] = [dict(m) for m in request.messages]
        else:
            path = self.prefix + "/completions"
            body["prompt"] = request.prompt
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        # temperature 0 is greedy on every OpenAI-compatible engine; not given means greedy too.
        body["temperature"] = float(request.temperature) if request.temperature else 0.0
        if request.top_p is not None:
            body["top_p"] = request.top_p
        elif self.facts.explicit_defaults:
            body["top_p"] = 1.0  # off, as in OpenAI's API; else the engine's default applies
        self._sampling(body, request)
        if request.n > 1:
            body["n"] = request.n
        stops = list(request.stop)
        if self.facts.max_stop is not None:
            stops = stops[: self.facts.max_stop]  # the rest are applied to the text by parse()
        if stops:
            body["stop"] = stops
        if request.seed is not None:
            body["seed"] = request.seed
        if request.frequency_penalty is not None:
            body["frequency_penalty"] = request.frequency_penalty
        if request.presence_penalty is not None:
            body["presence_penalty"] = request.presence_penalty
        if request.constraint is not None:
            if request.constraint.kind not in self.constraint_kinds:
                raise unsupported_constraint(self.name, request.constraint, self.constraint_kinds)
            body.update(self._constraint(request.constraint, chat=request.is_chat))
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(request.extra)
        return path, body

    def _sampling(self, body: dict[str, Any], request: Request) -> None:
        """Engine-specific sampling fields (``top_k``, ...)."""
        off = self.facts.top_k_off
        if off is None:
            # OpenAI has no top_k; many OpenAI-compatible APIs (Together, ...) take it when asked
            if request.top_k is not None and request.top_k > 0:
                body["top_k"] = request.top_k
            return
        if request.top_k is not None and request.top_k > 0:
            body["top_k"] = request.top_k
        elif request.top_k is not None or self.facts.explicit_defaults:
            body["top_k"] = off

    def _constraint(self, constraint: Constraint, *, chat: bool) -> dict[str, Any]:
        """The body keys for ``constraint`` (OpenAI: ``response_format`` json_schema)."""
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": constraint.value},
            }
        }

    def _matched_stop(self, choice: Mapping[str, Any]) -> str | None:
        """The stop string the engine matched, when it says (OpenAI does not)."""
        return None

    # ---- responses ----------------------------------------------------------------------------
    def _choice(self, request: Request, raw: Any, position: int) -> Choice:
        if not isinstance(raw, dict):  # decoded JSON: objects are dicts
            raise MalformedResponseError(f"{self.name} choice is not an object: {raw!r}"[:300])
        if request.is_chat:
            message = raw.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        else:
            text = raw.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise MalformedResponseError(f"{self.name} choice text is not a string: {text!r}"[:300])
        finish = _finish(raw.get("finish_reason"))
        matched = self._matched_stop(raw)
        if request.stop:
            cut, extra_match = apply_stops(text, request.stop)
            if extra_match is not None:
                text, finish, matched = cut, "stop", extra_match
        index = raw.get("index")
        return Choice(
            text=text,
            finish_reason=finish,
            index=index if isinstance(index, int) else position,
            matched_stop=matched,
        )

    def parse(self, request: Request, body: bytes | str) -> Result:
        """A ``/completions`` or ``/chat/completions`` body as a :class:`Result`."""
        data = decode_json(body, what=f"{self.name} response")
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise MalformedResponseError(
                f"{self.name} response has no 'choices' list: {str(data)[:200]!r}"
            )
        raw_choices = data["choices"]
        if len(raw_choices) == 1:  # the usual reply: nothing to order
            choices: tuple[Choice, ...] = (self._choice(request, raw_choices[0], 0),)
        else:
            choices = tuple(
                sorted(
                    (self._choice(request, c, i) for i, c in enumerate(raw_choices)),
                    key=_index,
                )
            )
        model = data.get("model")
        return Result(
            choices=choices,
            usage=parse_usage(data.get("usage")),
            model=model if isinstance(model, str) else None,
        )

    def parse_event(self, request: Request, data: str) -> list[Delta]:
        """One SSE ``data`` payload: ``[DONE]``, an error event, or a chunk of choices."""
        if data.strip() == "[DONE]":
            return [Delta(done=True)]
        event = decode_json(data, what=f"{self.name} stream event")
        if not isinstance(event, dict):
            raise MalformedResponseError(
                f"{self.name} stream event is not an object: {data[:200]!r}"
            )
        if "error" in event or event.get("object") == "error":
            raise error_from_payload(
                self.name, event, status=200, markers=self.facts.context_markers
            )
        usage = parse_usage(event.get("usage"))
        raw_choices = event.get("choices")
        if not isinstance(raw_choices, list):
            raise MalformedResponseError(f"{self.name} stream event has no choices: {data[:200]!r}")
        deltas: list[Delta] = []
        for position, raw in enumerate(raw_choices):
            if not isinstance(raw, dict):
                raise MalformedResponseError(f"{self.name} stream choice is not an object")
            if request.is_chat:
                delta = raw.get("delta")
                text = delta.get("content") if isinstance(delta, dict) else None
            else:
                text = raw.get("text")
            index = raw.get("index")
            deltas.append(
                Delta(
                    index=index if isinstance(index, int) else position,
                    text=text if isinstance(text, str) else "",
                    finish_reason=_finish(raw.get("finish_reason")),
                )
            )
        if usage is not None:
            deltas.append(Delta(usage=usage))
        return deltas

    def error(
        self,
        status: int,
        body: bytes | str,
        *,
        replica: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TGIError:
        """The error for a non-2xx response."""
        return engine_error(
            self.name,
            status,
            body,
            replica=replica,
            headers=headers,
            markers=self.facts.context_markers,
        )

    def check_model(self, model: str | None, limits: Limits | None) -> str | None:
        """Why the server would reject ``model``: it checks names and its list lacks this one.

        Example:
            >>> from tgispy.engines import VLLMDialect
            >>> VLLMDialect().check_model("llama", Limits(models=("m",)))
            "the vllm server serves ['m'], not model='llama'; pass one of those"
        """
        if not self.facts.checks_model or not model or limits is None or not limits.models:
            return None
        if model in limits.models:
            return None
        return (
            f"the {self.name} server serves {list(limits.models)}, not model={model!r}; "
            "pass one of those"
        )

    def parse_limits(self, body: bytes | str) -> Limits:
        """``GET /v1/models``: the served model ids, and ``max_model_len`` where given."""
        data = decode_json(body, what=f"{self.name} /v1/models response")
        entries = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(entries, list):
            entries = []
        models = tuple(
            str(e["id"]) for e in entries if isinstance(e, Mapping) and isinstance(e.get("id"), str)
        )
        lengths = [
            e["max_model_len"]
            for e in entries
            if isinstance(e, Mapping) and isinstance(e.get("max_model_len"), int)
        ]
        owners = sorted(
            {
                str(e.get("owned_by"))
                for e in entries
                if isinstance(e, Mapping) and e.get("owned_by")
            }
        )
        return Limits(
            models=models,
            context_length=min(lengths) if lengths else None,
            extra={"owned_by": owners},
        )
