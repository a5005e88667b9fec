"""vLLM's dialect (0.33.0): the OpenAI routes plus ``top_k``, ``structured_outputs`` and
``stop_reason``. Facts: :data:`tgispy.engines._facts.FACTS` ``["vllm"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgispy.engines._dialect import Constraint
from tgispy.engines._facts import FACTS, EngineFacts
from tgispy.engines._openai import OpenAIDialect

__all__ = ["VLLMDialect"]


@dataclass(frozen=True)
class VLLMDialect(OpenAIDialect):
    """vLLM's OpenAI-compatible server.

    * ``n > 1`` with greedy decoding is a 400 on vLLM: such requests fan out (each greedy).
    * Constraints go in ``structured_outputs`` (``json``, ``regex``, ``choice``, ``grammar``); the
      ``guided_*`` keys were removed in v0.12 and are silently ignored, so they are never sent.
    * ``stop_reason`` names the matched stop string.

    Example:
        >>> from tgispy.engines import Constraint, Request
        >>> VLLMDialect().build(Request(model="m", prompt="x", max_tokens=3,
        ...     constraint=Constraint("regex", "[0-9]+")))[1]["structured_outputs"]
        {'regex': '[0-9]+'}
    """

    facts: EngineFacts = FACTS["vllm"]

    def _constraint(self, constraint: Constraint, *, chat: bool) -> dict[str, Any]:
        # vllm/sampling_params.py StructuredOutputsParams: exactly one of these keys
        return {"structured_outputs": {constraint.kind: constraint.value}}

    def _matched_stop(self, choice: Mapping[str, Any]) -> str | None:
        # stop_reason: the matched stop string, a stop token id (int) or null for EOS
        reason = choice.get("stop_reason")
        return reason if isinstance(reason, str) else None
