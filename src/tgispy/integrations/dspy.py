"""tgispy's fleet client inside DSPy 3.4: engines for ``dspy.LM(engine=..., async_engine=...)``.

Install with ``pip install 'tgispy[dspy]'`` (DSPy 3.4.1). Then every DSPy module, adapter
(``ChatAdapter``, ``JSONAdapter``), ``Evaluate`` and optimizer runs on TGI through tgispy:
replica routing and ejection, ``/info``-aware validation, JSON schemas as TGI grammars, token
usage, and streaming -- without LiteLLM. ``engine=`` (or :func:`fleet_lm`) does the same on vLLM,
SGLang, llama.cpp, Ollama and OpenAI-compatible fleets.

Example:
    >>> import dspy
    >>> from tgispy.integrations.dspy import tgi_lm
    >>> lm = tgi_lm("tgi/HuggingFaceTB/SmolLM2-135M-Instruct",
    ...             ["http://127.0.0.1:8080", "http://127.0.0.1:8081"])
    >>> dspy.configure(lm=lm)
    >>> dspy.ChainOfThought("question -> answer")(question="Capital of France?")  # doctest: +SKIP

DSPy owns its response cache, its retries (``num_retries``) and ``n`` (one engine call per
candidate); the engines make one attempt per call and never cache. See :func:`tgi_lm` for how
tgispy's fail-over retries compose with DSPy's.
"""

from __future__ import annotations

from tgispy.integrations._dspy_require import require_dspy

require_dspy()

from tgispy.integrations._dspy_engine import (  # noqa: E402
    ENGINE_NAMES,
    AsyncTGIEngine,
    TGIEngine,
    fleet_lm,
    tgi_lm,
)
from tgispy.integrations._dspy_wire import (  # noqa: E402
    CHAT_PARAMETERS,
    GENERATE_PARAMETERS,
    WireRequest,
    build_wire_request,
    default_prompt,
    to_lm15_error,
)
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout  # noqa: E402

# DSPy saves a custom engine as "module:Class" and imports that path when loading; saved programs
# should name this public module, not the private one that happens to define the classes.
AsyncTGIEngine.__module__ = TGIEngine.__module__ = __name__

__all__ = [
    "CHAT_PARAMETERS",
    "ENGINE_NAMES",
    "GENERATE_PARAMETERS",
    "AsyncTGIEngine",
    "RetryPolicy",
    "RoutingPolicy",
    "TGIEngine",
    "Timeout",
    "WireRequest",
    "build_wire_request",
    "default_prompt",
    "fleet_lm",
    "tgi_lm",
    "to_lm15_error",
]
