"""llama.cpp server's dialect: the OpenAI routes plus ``top_k``/``min_p``, top-level
``json_schema`` / GBNF ``grammar``, and ``/props`` for limits.
Facts: :data:`tgispy.engines._facts.FACTS` ``["llamacpp"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgispy.engines._dialect import Constraint, Limits, Request, decode_json
from tgispy.engines._facts import FACTS, EngineFacts
from tgispy.engines._gbnf import choice_to_gbnf, regex_to_gbnf
from tgispy.engines._openai import OpenAIDialect

__all__ = ["LlamaCppDialect"]


@dataclass(frozen=True)
class LlamaCppDialect(OpenAIDialect):
    """llama.cpp's HTTP server (``llama-server``, or xllamacpp's embedding of it).

    * Fields left out take the server's CLI defaults (temperature 0.8, top_k 40, top_p 0.95,
      min_p 0.05), so "off" is sent explicitly: ``top_p=1``, ``top_k=0``, ``min_p=0``.
    * ``n`` may not exceed the slot count (``/props`` ``total_slots``); until that is known, ``n``
      fans out.
    * Constraints: ``json_schema`` (an object) and ``grammar`` (GBNF) at the top level, on the
      completion and chat routes alike; regexes and choice lists are translated to GBNF.

    Example:
        >>> from tgispy.engines import Request
        >>> body = LlamaCppDialect().build(Request(prompt="x", max_tokens=3))[1]
        >>> body["top_k"], body["min_p"], body["top_p"]
        (0, 0.0, 1.0)
    """

    facts: EngineFacts = FACTS["llamacpp"]

    def server_n(self, request: Request, limits: Limits | None) -> int:
        if limits is None or limits.max_n is None:
            return 1  # n above the slot count is a 400; fan out until /props says how many
        return super().server_n(request, limits)

    def _sampling(self, body: dict[str, Any], request: Request) -> None:
        super()._sampling(body, request)
        body["min_p"] = 0.0

    def _constraint(self, constraint: Constraint, *, chat: bool) -> dict[str, Any]:
        if constraint.kind == "json":
            return {"json_schema": constraint.value}
        if constraint.kind == "choice":
            return {"grammar": choice_to_gbnf(constraint.value)}
        if constraint.kind == "regex":
            return {"grammar": regex_to_gbnf(constraint.value)}
        return {"grammar": constraint.value}

    def parse_limits(self, body: bytes | str) -> Limits:
        """``GET /props``: per-slot context (``n_ctx``), slot count, model alias, build."""
        data = decode_json(body, what="llama.cpp /props response")
        if not isinstance(data, Mapping):
            data = {}
        settings = data.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
        slots = data.get("total_slots")
        alias = data.get("model_alias")
        build = data.get("build_info")
        return Limits(
            models=(alias,) if isinstance(alias, str) and alias else (),
            context_length=n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None,
            max_n=slots if isinstance(slots, int) and slots > 0 else None,
            version=build if isinstance(build, str) else None,
            extra={"model_path": data.get("model_path")},
        )
