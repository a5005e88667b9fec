"""Engine dialects: one pure module per engine, all speaking one neutral request/result shape.

Each dialect turns a :class:`Request` into ``(path, body)`` and the engine's responses, stream
payloads, errors and limits into neutral values; the fleet client (routing, retries, cache) is
shared. Engines: generic OpenAI-compatible, vLLM, SGLang, llama.cpp server and Ollama.

Example:
    >>> from tgispy.engines import Request, dialect_for
    >>> path, body = dialect_for("vllm").build(Request(model="m", prompt="2+2=", max_tokens=2))
    >>> path, body["temperature"], body["top_k"]
    ('/v1/completions', 0.0, 0)
"""

from __future__ import annotations

from tgispy._public import publish as _publish
from tgispy.engines._dialect import (
    Choice,
    Constraint,
    Delta,
    Dialect,
    Limits,
    Request,
    Result,
    apply_stops,
)
from tgispy.engines._errors import engine_error
from tgispy.engines._facts import FACTS, EngineFacts
from tgispy.engines._gbnf import choice_to_gbnf, regex_to_gbnf
from tgispy.engines._llamacpp import LlamaCppDialect
from tgispy.engines._ollama import OllamaDialect
from tgispy.engines._openai import OpenAIDialect
from tgispy.engines._sglang import SGLangDialect
from tgispy.engines._vllm import VLLMDialect
from tgispy.errors import ConfigError

__all__ = [
    "ENGINES",
    "FACTS",
    "Choice",
    "Constraint",
    "Delta",
    "Dialect",
    "EngineFacts",
    "Limits",
    "LlamaCppDialect",
    "OllamaDialect",
    "OpenAIDialect",
    "Request",
    "Result",
    "SGLangDialect",
    "VLLMDialect",
    "apply_stops",
    "choice_to_gbnf",
    "dialect_for",
    "engine_error",
    "regex_to_gbnf",
]

#: the engines ``engine=`` accepts
ENGINES = ("openai", "vllm", "sglang", "llamacpp", "ollama")


def dialect_for(engine: str, *, prefix: str = "/v1") -> Dialect:
    """The dialect of ``engine`` (one of :data:`ENGINES`).

    Args:
        engine: the engine name.
        prefix: the OpenAI routes' path prefix under the base URL (``""`` when the base URL
            already ends in ``/v1``); Ollama's native routes take none.

    Raises:
        ConfigError: an unknown engine, naming the known ones.
    """
    if engine == "openai":
        return OpenAIDialect(prefix=prefix)
    if engine == "vllm":
        return VLLMDialect(prefix=prefix)
    if engine == "sglang":
        return SGLangDialect(prefix=prefix)
    if engine == "llamacpp":
        return LlamaCppDialect(prefix=prefix)
    if engine == "ollama":
        return OllamaDialect()
    raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
