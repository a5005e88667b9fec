"""DSPy 2.4.17's LiteLLM-style ``dspy.LM("provider/model", api_base=...)``, and the hosted
proprietary clients that are out of scope.

Provider prefixes map to dialects: ``openai/`` (and ``text-completion-openai/``) the generic
OpenAI-compatible one, ``hosted_vllm/`` vLLM, ``ollama_chat/`` / ``ollama/`` Ollama's native
chat / generate, ``huggingface/`` TGI's OpenAI-compatible ``/v1``. Hosted proprietary APIs
(Anthropic, Cohere, Gemini, Bedrock, Azure, ...) raise a :class:`~tgispy.errors.ConfigError` that
says so and shows the OpenAI-compatible route.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from tgispy._sync import run_sync
from tgispy.errors import ConfigError
from tgispy.lm._fleet import FleetLM, base_url_and_prefix
from tgispy.lm._scope import OUT_OF_SCOPE

__all__ = ["OUT_OF_SCOPE", "ProviderLM", "out_of_scope_class"]

#: provider prefix -> (engine, model_type override, default api_base)
_PROVIDERS: Mapping[str, tuple[str, str | None, str | None]] = {
    "openai": ("openai", None, "https://api.openai.com/v1"),
    "text-completion-openai": ("openai", "text", "https://api.openai.com/v1"),
    "hosted_vllm": ("vllm", None, None),
    "ollama_chat": ("ollama", "chat", "http://localhost:11434"),
    "ollama": ("ollama", "text", "http://localhost:11434"),
    "huggingface": ("openai", "chat", None),
}

_ROUTE_HINT = (
    "serve the model behind an OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, TGI) "
    "and use dspy.OpenAI(model=..., api_base='http://host:port/v1') or "
    "dspy.LM('openai/<model>', api_base='http://host:port/v1')"
)

#: hosted proprietary providers (LiteLLM names) that tgispy does not serve
_OUT_OF_SCOPE_PROVIDERS = frozenset(
    {
        "anthropic", "azure", "azure_ai", "bedrock", "cohere", "cohere_chat", "gemini",
        "vertex_ai", "vertex_ai_beta", "palm", "mistral", "groq", "databricks", "sagemaker",
        "watsonx", "cloudflare", "clarifai", "replicate", "perplexity", "deepseek", "xai",
        "together_ai", "anyscale", "fireworks_ai", "snowflake", "premai", "you",
    }
)  # fmt: skip


class ProviderLM(FleetLM):
    """``dspy.LM`` of DSPy 2.4.17 (its LiteLLM client), for self-hosted and OpenAI-compatible APIs.

    Args:
        model: ``"provider/model"``: ``openai/``, ``text-completion-openai/``, ``hosted_vllm/``,
            ``ollama_chat/``, ``ollama/`` or ``huggingface/`` (TGI's ``/v1``).
        model_type: ``"chat"`` (default, as in 2.4.17) or ``"text"``.
        temperature, max_tokens: 2.4.17's defaults (``0.0``, ``1000``).
        cache: ``True``, ``False`` or an ``LMCache``.
        **kwargs: ``api_base`` (a URL or a list: one replica each), ``api_key``, and default
            generation parameters.

    Example:
        >>> lm = ProviderLM("hosted_vllm/meta-llama/Llama-3.1-8B", api_base="http://gpu:8000/v1",
        ...                 cache=False)
        >>> lm.model, lm.dialect.name, lm.model_type
        ('meta-llama/Llama-3.1-8B', 'vllm', 'chat')
    """

    def __init__(
        self,
        model: str,
        model_type: str = "chat",
        temperature: float = 0.0,
        max_tokens: int = 1000,
        cache: Any = True,
        **kwargs: Any,
    ) -> None:
        if self.__dict__.get("_provider_ready"):
            return  # built by ``LM(...)``, whose __new__ returned us: Python calls __init__ again
        if not isinstance(model, str) or "/" not in model:
            raise ConfigError(
                f"model must be 'provider/model' (e.g. 'openai/gpt-4o-mini' or "
                f"'hosted_vllm/meta-llama/Llama-3.1-8B'), got {model!r}"
            )
        provider, name = model.split("/", 1)
        if provider in _OUT_OF_SCOPE_PROVIDERS:
            raise ConfigError(
                f"provider {provider!r} is a hosted proprietary API, out of scope for tgispy; "
                + _ROUTE_HINT
            )
        if provider not in _PROVIDERS:
            raise ConfigError(
                f"unknown provider {provider!r}; tgispy serves {', '.join(sorted(_PROVIDERS))}"
            )
        engine, forced_type, default_base = _PROVIDERS[provider]
        env = provider.upper()
        api_base = kwargs.pop("api_base", None) or os.environ.get(f"{env}_API_BASE") or default_base
        if api_base is None:
            raise ConfigError(f"{provider}/ models need api_base='http://host:port/v1'")
        api_key = kwargs.pop("api_key", None) or os.environ.get(f"{env}_API_KEY")
        if api_key is None and provider == "huggingface":  # as LiteLLM: HF's own token too
            api_key = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
        bases = [api_base] if isinstance(api_base, str) else list(api_base)
        if engine == "ollama":
            urls, prefix = [b.rstrip("/") for b in bases], ""
        else:
            split = [base_url_and_prefix(b) for b in bases]
            urls, prefix = [u for u, _ in split], split[0][1]
        options = {
            k: kwargs.pop(k) for k in ("retry", "routing", "transport", "timeout") if k in kwargs
        }
        super().__init__(
            name,
            urls=urls,
            engine=engine,
            prefix=prefix,
            model_type=forced_type or model_type,
            defaults={"temperature": temperature, "max_tokens": max_tokens},
            kwargs=kwargs,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
            cache=cache,
            **options,
        )
        self.provider_model = model
        self.cache = cache
        self._provider_ready = True

    def _text_prompt(self, messages: Sequence[Mapping[str, Any]]) -> str:
        # 2.4.17's text completion: the contents joined by blank lines, then "BEGIN RESPONSE:"
        return "\n\n".join([str(m.get("content", "")) for m in messages] + ["BEGIN RESPONSE:"])

    async def acall(  # type: ignore[override]
        self,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of ``__call__``: the output texts (chat or text completion)."""
        kwargs.pop("only_completed", None)
        kwargs.pop("return_sorted", None)
        chat = list(messages or [{"role": "user", "content": prompt}])
        if self.model_type == "chat":
            response = await self.achat(chat, **kwargs)
            return [str(c["text"]) for c in response["choices"]]
        generation = await self._arecorded(self._text_prompt(chat), **kwargs)
        return [c.text for c in generation.completions]

    def __call__(  # type: ignore[override]
        self,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """``lm(prompt)`` or ``lm(messages=[...])`` -> the output texts, as in 2.4.17."""
        return run_sync(self.acall(prompt, messages, **kwargs))

    def _messages(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]


def out_of_scope_class(name: str) -> type:
    """A class named ``name`` whose constructor raises the out-of-scope error.

    Importing the name works (DSPy 2.4 programs import it); constructing it says what to do.

    Example:
        >>> Claude = out_of_scope_class("Claude")
        >>> try:
        ...     Claude(model="claude-3")
        ... except ConfigError as err:
        ...     print(str(err)[:60])
        dspy.Claude is out of scope for tgispy: it is a hosted propr
    """

    def __init__(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        what = (
            "loads weights in-process"
            if name in ("HFModel", "ChatModuleClient")
            else ("is a hosted proprietary API client")
        )
        raise ConfigError(
            f"dspy.{name} is out of scope for tgispy: it {what}. "
            + _ROUTE_HINT[0].upper()
            + _ROUTE_HINT[1:]
        )

    return type(
        name,
        (),
        {
            "__init__": __init__,
            "__doc__": f"DSPy 2.4's {name}: out of scope.",
            "__module__": "tgispy",
        },
    )


def _define_out_of_scope() -> None:
    # One module attribute per name, so `tgispy.Claude` resolves lazily like any other class.
    namespace = globals()
    for name in OUT_OF_SCOPE:
        namespace[name] = out_of_scope_class(name)


_define_out_of_scope()
