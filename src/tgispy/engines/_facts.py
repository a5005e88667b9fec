"""Protocol facts per engine, kept once; the dialects derive their rules from this table.

Every value cites where it was read (``owner/repo@ref:path``); the full reference is
``/work/shared/engines/`` (README.md and facts.json) in the project workspace. Facts marked
"confirmed" were checked against the running llama.cpp server in ``tests/engines``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["FACTS", "EngineFacts"]


@dataclass(frozen=True)
class EngineFacts:
    """What a dialect needs to know about one engine's OpenAI-compatible (or native) API.

    Attributes:
        name: the engine.
        health_path: the cheap GET that says a replica is up.
        limits_path: the GET read for limits (``None``: none, or not a GET).
        max_stop: how many stop strings a request may carry (``None``: no limit found).
        server_n: whether ``n`` choices come from one request.
        greedy_n: whether ``n > 1`` is accepted with temperature 0.
        top_k_off: the ``top_k`` value meaning "off" (``None``: the API has no ``top_k``).
        explicit_defaults: send ``top_p=1``/``top_k`` off when not given, because the engine
            would otherwise use the model's or its CLI's sampling defaults.
        constraint_kinds: the constraint kinds the engine enforces.
        context_markers: substrings of its "the prompt does not fit" error messages.
        checks_model: whether a model name the server does not list is an error (so the client
            may refuse it before sending, from the ``/v1/models`` list).
    """

    name: str
    health_path: str
    limits_path: str | None
    max_stop: int | None
    server_n: bool
    greedy_n: bool
    top_k_off: int | None
    explicit_defaults: bool
    constraint_kinds: frozenset[str]
    context_markers: tuple[str, ...]
    checks_model: bool = False


_FACTS = {
    # OpenAI's own API, the contract every "OpenAI-compatible" server copies: stop <= 4 strings,
    # n served in one request, response_format json_schema; no top_k.
    # Source: openai/openai-openapi openapi.yaml, CreateCompletionRequest and
    # CreateChatCompletionRequest.
    "openai": EngineFacts(
        name="openai",
        health_path="/models",
        limits_path="/models",
        max_stop=4,
        server_n=True,
        greedy_n=True,
        top_k_off=None,
        explicit_defaults=False,
        constraint_kinds=frozenset({"json"}),
        context_markers=("maximum context length", "context_length_exceeded"),
    ),
    # vLLM 0.33.0. health: vllm/entrypoints/serve/instrumentator/health.py (200 empty).
    # max_stop: VLLM_MAX_STOP_STRINGS=4 (vllm/envs.py). greedy with n>1 -> 400 'n must be 1 when
    # using greedy sampling' (vllm/sampling_params.py _verify_args). top_k 0 or -1 = off.
    # Omitted sampling fields come from generation_config.json (--generation-config auto), so
    # DSPy's defaults must be sent explicitly. Constraints: structured_outputs json/regex/choice/
    # grammar (vllm/sampling_params.py StructuredOutputsParams); guided_* are silently ignored.
    # Context errors: vllm/renderers/params.py.
    "vllm": EngineFacts(
        name="vllm",
        health_path="/health",
        limits_path="/v1/models",
        max_stop=4,
        server_n=True,
        greedy_n=False,
        top_k_off=0,
        explicit_defaults=True,
        constraint_kinds=frozenset({"json", "regex", "choice", "grammar"}),
        context_markers=("maximum context length", "cannot be greater than max_model_len"),
        # unknown names: 404 'The model `x` does not exist.' (serve/engine/serving.py)
        checks_model=True,
    ),
    # SGLang 0.5.23. /health runs a 1-token generation, /ready does not
    # (srt/entrypoints/http_server.py). MAX_STOP_COUNT 32, top_k 0 -> 400, -1 = off
    # (srt/sampling/sampling_params.py). n served with one prefill (tokenizer_manager.py).
    # Constraints: json_schema (a JSON *string*), regex, ebnf (openai/protocol.py).
    # Context errors: srt/managers/tokenizer_manager.py _validate_one_request.
    "sglang": EngineFacts(
        name="sglang",
        health_path="/ready",
        limits_path="/v1/models",
        max_stop=32,
        server_n=True,
        greedy_n=True,
        top_k_off=-1,
        explicit_defaults=True,
        constraint_kinds=frozenset({"json", "regex", "choice", "grammar"}),
        context_markers=(
            "longer than the model's context length",
            "exceeds the model's maximum context length",
        ),
    ),
    # llama.cpp server at ggml-org/llama.cpp@0c1e57098 (tools/server/...). /health 200
    # {"status":"ok"}; /props has n_ctx per slot and total_slots; n (alias n_cmpl) <= slots else
    # 400 (server-schema.cpp); no stop limit; top_k 0 = off; CLI sampling defaults (temperature
    # 0.8, top_k 40, top_p 0.95, min_p 0.05) apply to omitted fields; json_schema and GBNF
    # grammar at the top level (server-schema.cpp L251-288); context error type
    # exceed_context_size_error (server-common.cpp).
    "llamacpp": EngineFacts(
        name="llamacpp",
        health_path="/health",
        limits_path="/props",
        max_stop=None,
        server_n=True,
        greedy_n=True,
        top_k_off=0,
        explicit_defaults=True,
        constraint_kinds=frozenset({"json", "grammar", "choice", "regex"}),
        context_markers=("exceeds the available context size", "larger than the max context size"),
    ),
    # Ollama v0.32.15 native API. No /health: GET / answers 'Ollama is running'
    # (server/routes.go). n is ignored (docs/api/openai-compatibility.mdx); format takes "json"
    # or a JSON schema, nothing else (llm/llama_server.go); /api/show is a POST.
    # Context error: llm/llama_server.go L298.
    "ollama": EngineFacts(
        name="ollama",
        health_path="/",
        limits_path=None,
        max_stop=None,
        server_n=False,
        greedy_n=True,
        top_k_off=None,
        explicit_defaults=False,
        constraint_kinds=frozenset({"json"}),
        context_markers=("the prompt is longer than the context length",),
    ),
}

#: engine name -> its facts
FACTS: Mapping[str, EngineFacts] = MappingProxyType(_FACTS)
