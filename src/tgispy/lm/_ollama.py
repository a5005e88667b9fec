"""DSPy 2.4's ``OllamaLocal`` on the fleet core: Ollama's ``/api/generate`` and ``/api/chat``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tgispy.lm._fleet import FleetLM
from tgispy.lm._openai import _fleet_options

__all__ = ["OllamaLocal"]


class OllamaLocal(FleetLM):
    """A model served by Ollama (one server, or a list of ``base_url`` replicas).

    Args:
        model: the Ollama model name (``"llama2"`` by default, as in 2.4).
        model_type: ``"text"`` (``/api/generate``) or ``"chat"`` (``/api/chat``).
        base_url: ``"http://localhost:11434"``, or a list of them.
        timeout_s: seconds per request attempt.
        temperature, max_tokens, top_p, top_k, frequency_penalty, presence_penalty, n, num_ctx:
            the 2.4 defaults (``max_tokens`` is sent as ``num_predict``; ``n`` completions are
            ``n`` requests, as Ollama has no ``n``).
        format: ``"json"`` for Ollama's JSON mode.
        system: a system prompt (text mode, as in 2.4).
        **kwargs: more Ollama options (``repeat_penalty``, ``seed``, ...), and tgispy's
            ``cache``, ``retry``, ``routing``, ``transport``.

    Example:
        >>> lm = OllamaLocal(model="llama3.2", cache=False)
        >>> lm.kwargs["num_predict"], lm.kwargs["top_k"], lm.dialect.name
        (150, 20, 'ollama')
    """

    provider = "ollama"

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        model: str = "llama2",
        model_type: str = "text",
        base_url: str | Sequence[str] = "http://localhost:11434",
        timeout_s: float = 120,
        temperature: float = 0.0,
        max_tokens: int = 150,
        top_p: int = 1,
        top_k: int = 20,
        frequency_penalty: float = 0,
        presence_penalty: float = 0,
        n: int = 1,
        num_ctx: int = 1024,
        format: str | None = None,
        system: str | None = None,
        **kwargs: Any,
    ) -> None:
        options = _fleet_options(kwargs)
        options.setdefault("timeout", timeout_s)
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        defaults = {
            "temperature": temperature,
            "max_tokens": max_tokens,
            "top_p": top_p,
            "top_k": top_k,
            "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty,
            "n": n,
            "num_ctx": num_ctx,
        }
        super().__init__(
            model, urls=urls, engine="ollama", model_type=model_type, defaults=defaults,
            kwargs=kwargs, **options,
        )  # fmt: skip
        self.kwargs["num_predict"] = self.kwargs["max_tokens"]  # as 2.4 does
        self.base_url = base_url
        self.model_name = model
        self.timeout_s = timeout_s
        self.format = format
        self.system = system
        if format:
            self.kwargs.setdefault("format", format)
        if system and model_type == "text":
            self.kwargs.setdefault("system", system)
