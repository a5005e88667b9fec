"""DSPy 2.4's ``HFClientVLLM`` and ``HFClientSGLang`` on the fleet core."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.lm._fleet import FleetLM
from tgispy.lm._openai import _fleet_options
from tgispy.tgi._endpoints import PortArg, replica_urls

__all__ = ["HFClientSGLang", "HFClientVLLM"]

_LM_DEFAULTS: Mapping[str, Any] = {
    "temperature": 0.0,
    "max_tokens": 150,
    "top_p": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "n": 1,
}


def _urls(url: str | Sequence[str], port: PortArg) -> tuple[str, ...]:
    # 2.4: a list of URLs is used as it is (port ignored); a string gets ":port"
    if isinstance(url, str):
        return replica_urls(url, port)
    if isinstance(url, Sequence) and url:
        return replica_urls(list(url), None)
    raise ConfigError(
        f"url must be a string or a list of strings, got {type(url).__name__}; e.g. "
        "url='http://localhost' with port=8000"
    )


class HFClientVLLM(FleetLM):
    """DSPy 2.4's vLLM client: ``/v1/completions`` (or chat) on one or many vLLM replicas.

    Args:
        model: the model vLLM serves (``--served-model-name``).
        port: the port (``8000``) or a list of ports (one replica each).
        model_type: ``"text"`` (default) or ``"chat"``.
        url: ``"http://localhost"``, or a list of full base URLs (then ``port`` is ignored).
        http_request_kwargs: ``headers`` and ``timeout`` (seconds).
        engine: ``"vllm"``; any other engine name speaks that dialect instead.
        **kwargs: default generation parameters (2.4: ``temperature=0.0, max_tokens=150,
            top_p=1, frequency_penalty=0, presence_penalty=0, n=1``), plus tgispy's ``cache``,
            ``retry``, ``routing``, ``transport``.

    Example:
        >>> lm = HFClientVLLM(model="meta-llama/Llama-3.1-8B", port=[8000, 8001],
        ...                   url="http://gpu", cache=False)
        >>> lm.urls
        ('http://gpu:8000', 'http://gpu:8001')
    """

    provider = "hf"
    _engine = "vllm"

    def __init__(
        self,
        model: str,
        port: PortArg,
        model_type: str = "text",
        url: str | Sequence[str] = "http://localhost",
        http_request_kwargs: Mapping[str, Any] | None = None,
        *,
        engine: str | None = None,
        **kwargs: Any,
    ) -> None:
        urls = _urls(url, port)
        http = dict(http_request_kwargs or {})
        unknown = sorted(set(http) - {"headers", "timeout", "verify"})
        if unknown:
            raise ConfigError(
                f"http_request_kwargs supports headers, timeout and verify; got {unknown}"
            )
        options = _fleet_options(kwargs)
        options.setdefault("timeout", http.get("timeout"))
        options.setdefault("verify", http.get("verify", True))
        system_prompt = kwargs.pop("system_prompt", None)
        super().__init__(
            model,
            urls=urls,
            engine=engine or self._engine,
            model_type=model_type,
            defaults=self._defaults(),
            kwargs=kwargs,
            headers=http.get("headers"),
            system_prompt=system_prompt,
            **options,
        )
        self.port = port
        self.url = url
        self.http_request_kwargs = http
        self.headers = {"Content-Type": "application/json"}
        # 2.4 keeps model, port and url in kwargs (for lm.copy()); they are never sent
        self.kwargs.update({"model": model, "port": port, "url": tuple(urls)})

    def _defaults(self) -> Mapping[str, Any]:
        return _LM_DEFAULTS


class HFClientSGLang(HFClientVLLM):
    """DSPy 2.4's SGLang client (``/v1/completions``).

    Defaults as in 2.4: ``temperature=0.01, max_tokens=75, top_p=0.97, n=1,
    stop=["\\n", "\\n\\n"]``.

    Example:
        >>> HFClientSGLang(model="m", port=30000, cache=False).dialect.name
        'sglang'
    """

    _engine = "sglang"

    def __init__(
        self,
        model: str,
        port: PortArg,
        url: str | Sequence[str] = "http://localhost",
        **kwargs: Any,
    ) -> None:
        super().__init__(model, port, kwargs.pop("model_type", "text"), url, **kwargs)

    def _defaults(self) -> Mapping[str, Any]:
        return {
            "temperature": 0.01,
            "max_tokens": 75,
            "top_p": 0.97,
            "n": 1,
            "stop": ["\n", "\n\n"],
        }
