"""DSPy 2.4's OpenAI-compatible clients on the fleet core: ``OpenAI``, ``Together``, ``Anyscale``.

``OpenAI(api_base=...)`` is how most DSPy 2.4 programs reach a self-hosted server (vLLM, SGLang,
llama.cpp, Ollama's ``/v1``, TGI's ``/v1``); ``engine=`` picks that server's dialect so its rules
(sampling defaults, constraints, ``n``) are honoured. ``api_base`` may be a list: one replica each.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.lm._fleet import FleetLM, base_url_and_prefix

__all__ = ["Anyscale", "OpenAI", "Together"]

_OPENAI_DEFAULTS: Mapping[str, Any] = {
    "temperature": 0.0,
    "max_tokens": 150,
    "top_p": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "n": 1,
}
_FLEET_KEYS = ("cache", "retry", "routing", "transport", "history_size", "verify", "timeout")


def _fleet_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop tgispy's own constructor options out of the 2.4 ``**kwargs``."""
    return {k: kwargs.pop(k) for k in _FLEET_KEYS if k in kwargs}


def _replicas(api_base: str | Sequence[str]) -> tuple[list[str], str]:
    bases = [api_base] if isinstance(api_base, str) else list(api_base)
    if not bases:
        raise ConfigError("api_base must be a URL or a non-empty list of URLs")
    split = [base_url_and_prefix(b) for b in bases]
    prefixes = {prefix for _, prefix in split}
    if len(prefixes) > 1:
        raise ConfigError("every api_base of a fleet must end the same way (all with /v1, or none)")
    return [url for url, _ in split], prefixes.pop()


class OpenAI(FleetLM):
    """DSPy 2.4's ``OpenAI`` client (``dsp.GPT3``), for OpenAI and any OpenAI-compatible server.

    Args:
        model: the model name (``"gpt-3.5-turbo-instruct"`` by default, as in 2.4).
        api_key: the bearer token (else ``$OPENAI_API_KEY``); sent only to the replicas.
        api_provider: ``"openai"`` (Azure is out of scope: see ``AzureOpenAI``).
        api_base / base_url: the server's base URL, e.g. ``"http://gpu-node:8000/v1"``, or a list
            of them (one replica each). Default ``https://api.openai.com/v1``.
        model_type: ``"chat"`` or ``"text"``; by default chat for gpt-3.5/gpt-4/turbo/o1 names
            that are not ``instruct``, as in 2.4.
        system_prompt: a system message before each prompt in chat mode.
        default_headers: extra headers for every request.
        engine: the server's dialect: ``"auto"`` (default: detected once per replica with safe
            GETs; unrecognised servers get the generic ``"openai"`` dialect), ``"openai"``,
            ``"vllm"``, ``"sglang"``, ``"llamacpp"`` or ``"ollama"`` (Ollama's native API).
        **kwargs: default generation parameters (2.4's ``temperature=0.0, max_tokens=150,
            top_p=1, frequency_penalty=0, presence_penalty=0, n=1``), and tgispy's ``cache``,
            ``retry``, ``routing``, ``timeout``, ``transport``.

    Example:
        >>> lm = OpenAI(model="meta-llama/Llama-3.1-8B-Instruct", api_base="http://gpu:8000/v1",
        ...             api_key="x", model_type="chat", engine="vllm", cache=False)
        >>> lm.kwargs["max_tokens"], lm.dialect.name, lm.urls
        (150, 'vllm', ('http://gpu:8000',))
    """

    provider = "openai"

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        model: str = "gpt-3.5-turbo-instruct",
        api_key: str | None = None,
        api_provider: str = "openai",
        api_base: str | Sequence[str] | None = None,
        base_url: str | Sequence[str] | None = None,
        model_type: str | None = None,
        system_prompt: str | None = None,
        http_client: Any = None,
        default_headers: Mapping[str, str] | None = None,
        *,
        engine: str = "auto",
        **kwargs: Any,
    ) -> None:
        if api_provider == "azure":
            raise ConfigError(
                "Azure OpenAI is out of scope for tgispy (hosted proprietary API); serve the model "
                "behind an OpenAI-compatible route and use OpenAI(api_base=...)"
            )
        if http_client is not None:
            raise ConfigError("http_client is not supported: tgispy's fleet client does the HTTP")
        if model_type is None:
            chatty = any(k in model for k in ("gpt-3.5", "turbo", "gpt-4", "o1"))
            model_type = "chat" if chatty and "instruct" not in model else "text"
        base = (
            base_url or api_base or os.environ.get("OPENAI_API_BASE") or "https://api.openai.com/v1"
        )
        urls, prefix = _replicas(base)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        headers = {str(k): str(v) for k, v in (default_headers or {}).items()}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        options = _fleet_options(kwargs)
        super().__init__(
            model,
            urls=urls,
            engine=engine,
            prefix=prefix,
            model_type=model_type,
            defaults=_OPENAI_DEFAULTS,
            kwargs=kwargs,
            headers=headers,
            system_prompt=system_prompt,
            **options,
        )
        self.kwargs["model"] = model  # 2.4 keeps it there (never sent twice: see _NOT_SENT)
        self.api_base = base
        self.api_provider = api_provider


class _Hosted(FleetLM):
    """Shared constructor of 2.4's hosted OpenAI-compatible clients (Together, Anyscale)."""

    _env: str = ""
    _default_base: str = ""

    def __init__(
        self,
        model: str,
        api_base: str | Sequence[str] | None = None,
        api_key: str | None = None,
        *,
        defaults: Mapping[str, Any],
        inst_template: bool,
        **kwargs: Any,
    ) -> None:
        base = os.environ.get(f"{self._env}_API_BASE") or api_base or self._default_base
        if isinstance(base, str) and base.endswith("/"):
            raise ConfigError(f"{type(self).__name__} base URL shouldn't end with /")
        urls, prefix = _replicas(base)
        token = os.environ.get(f"{self._env}_API_KEY") or api_key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        options = _fleet_options(kwargs)
        super().__init__(
            model,
            urls=urls,
            engine="openai",
            prefix=prefix,
            model_type="text",
            defaults=defaults,
            kwargs=kwargs,
            headers=headers,
            **options,
        )
        self.api_base = base
        self.use_inst_template = inst_template

    def _format_prompt(self, prompt: str) -> str:
        return f"[INST]{prompt}[/INST]" if self.use_inst_template else prompt


class Together(_Hosted):
    """DSPy 2.4's ``Together`` client (Together's OpenAI-compatible completions).

    Defaults as in 2.4: ``temperature=0.0, max_tokens=512, top_p=1, top_k=20,
    repetition_penalty=1, n=1, stop="\\n\\n---"``; ``[INST]...[/INST]`` around prompts of
    ``inst``/``instruct`` models. ``$TOGETHER_API_BASE`` / ``$TOGETHER_API_KEY`` win, as in 2.4.

    Example:
        >>> lm = Together("mistralai/Mixtral-8x7B-Instruct-v0.1", api_key="k", cache=False)
        >>> lm.use_inst_template, lm.kwargs["max_tokens"]
        (True, 512)
    """

    provider = "together"
    _env = "TOGETHER"
    _default_base = "https://api.together.xyz/v1"

    def __init__(
        self,
        model: str,
        api_base: str | Sequence[str] = "https://api.together.xyz/v1",
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        defaults = {
            "temperature": 0.0,
            "max_tokens": 512,
            "top_p": 1,
            "top_k": 20,
            "repetition_penalty": 1,
            "n": 1,
            "stop": "\n\n---",
        }
        inst = any(k in model.lower() for k in ("inst", "instruct"))
        super().__init__(model, api_base, api_key, defaults=defaults, inst_template=inst, **kwargs)
        self.kwargs["model"] = model


class Anyscale(_Hosted):
    """DSPy 2.4's ``Anyscale`` client (Anyscale Endpoints, OpenAI-compatible completions).

    Defaults as in 2.4: ``temperature=0.0, max_tokens=150, n=1``; prompts wrapped in
    ``[INST]...[/INST]``. ``$ANYSCALE_API_BASE`` / ``$ANYSCALE_API_KEY`` win, as in 2.4.

    Example:
        >>> Anyscale("meta-llama/Llama-2-7b-chat-hf", api_key="k", cache=False).kwargs["max_tokens"]
        150
    """

    provider = "anyscale"
    _env = "ANYSCALE"
    _default_base = "https://api.endpoints.anyscale.com/v1"

    def __init__(
        self,
        model: str,
        api_base: str | Sequence[str] = "https://api.endpoints.anyscale.com/v1",
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        defaults = {"temperature": 0.0, "max_tokens": 150, "n": 1}
        super().__init__(model, api_base, api_key, defaults=defaults, inst_template=True, **kwargs)
