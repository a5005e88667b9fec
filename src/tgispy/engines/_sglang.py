"""SGLang's dialect (0.5.23): the OpenAI routes plus ``top_k`` (``-1`` = off), the
``json_schema`` / ``regex`` / ``ebnf`` extension keys and ``matched_stop``.
Facts: :data:`tgispy.engines._facts.FACTS` ``["sglang"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgispy.engines._dialect import Constraint
from tgispy.engines._facts import FACTS, EngineFacts
from tgispy.engines._openai import OpenAIDialect

__all__ = ["SGLangDialect"]


@dataclass(frozen=True)
class SGLangDialect(OpenAIDialect):
    """SGLang's OpenAI-compatible server.

    * ``top_k=0`` is a 400 on SGLang; "off" is ``-1``.
    * ``json_schema`` must be a JSON-encoded *string*; a ``choice`` constraint becomes a regex
      alternation (SGLang has no choice key); grammars are EBNF (``ebnf``).
    * ``seed`` is ignored unless the server runs ``--enable-deterministic-inference``.

    Example:
        >>> from tgispy.engines import Constraint, Request
        >>> SGLangDialect().build(Request(model="m", prompt="x", max_tokens=3,
        ...     constraint=Constraint("json", {"type": "object"})))[1]["json_schema"]
        '{"type": "object"}'
    """

    facts: EngineFacts = FACTS["sglang"]

    def _constraint(self, constraint: Constraint, *, chat: bool) -> dict[str, Any]:
        if constraint.kind == "json":
            return {"json_schema": json.dumps(constraint.value)}
        if constraint.kind == "choice":
            return {"regex": "(" + "|".join(re.escape(str(c)) for c in constraint.value) + ")"}
        if constraint.kind == "grammar":
            return {"ebnf": constraint.value}
        return {"regex": constraint.value}

    def _matched_stop(self, choice: Mapping[str, Any]) -> str | None:
        matched = choice.get("matched_stop")
        return matched if isinstance(matched, str) else None
