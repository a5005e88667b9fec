"""``Retrieve`` and ``RetrieveThenRerank``: DSPy 2.4's retrieval modules over the configured ``rm``.

``Retrieve(k)(query)`` returns ``Prediction(passages=[...])``: the texts of the top ``k``
passages of the retrieval model configured with ``configure(rm=...)`` (``ColBERTv2``, the
embedded ``BM25``, or any callable ``rm(query, k=k) -> passages``). Several queries are merged
by summed ``prob`` (or ``score``), as DSPy 2.4 did.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from tgispy._settings import current as current_settings
from tgispy.dsp._search import retrieveEnsemble, retrievewithMetadata
from tgispy.errors import ConfigError
from tgispy.primitives._module import Parameter
from tgispy.primitives._prediction import Prediction

__all__ = ["Retrieve", "RetrieveThenRerank"]


def _queries(query_or_queries: str | Sequence[str]) -> list[str]:
    queries = [query_or_queries] if isinstance(query_or_queries, str) else list(query_or_queries)
    return [query.strip().split("\n")[0].strip() for query in queries]


def _get(passage: Any, key: str) -> Any:
    return passage[key] if isinstance(passage, dict) else getattr(passage, key)


def _as_prediction(passages: list[Any]) -> Prediction:
    """One query's passages (dicts) as a Prediction of lists, ``long_text`` as ``passages``."""
    if not passages or not all(isinstance(p, dict) for p in passages):
        return Prediction(
            passages=[p if isinstance(p, str) else _get(p, "long_text") for p in passages]
        )
    columns: dict[str, list[Any]] = {key: [] for key in passages[0] if key != "tracking_idx"}
    for passage in passages:
        for key, column in columns.items():
            column.append(passage.get(key))
    if "long_text" in columns:
        columns["passages"] = columns.pop("long_text")
    return Prediction(**columns)


class _RetrieverBase(Parameter):
    name = "Search"
    input_variable = "query"
    desc = (
        "takes a search query and returns one or more potentially relevant passages from a corpus"
    )

    def __init__(self, k: int = 3) -> None:
        self.stage = random.randbytes(8).hex()
        self.k = k

    def reset(self) -> None:
        pass

    def dump_state(self, save_verbose: bool = False) -> dict[str, Any]:
        return {"k": self.k}

    def load_state(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class Retrieve(_RetrieverBase):
    """Retrieve the top ``k`` passages for a query from the configured retrieval model.

    Also ``ReAct``'s default tool (``Search[query]``).

    Args:
        k: how many passages (a call may override it).

    Example:
        >>> import tgispy as dspy
        >>> dspy.configure(rm=lambda query, k: ["Paris is in France.", "Rome is in Italy."][:k])
        >>> dspy.Retrieve(k=1)("Where is Paris?").passages
        ['Paris is in France.']
    """

    def forward(
        self,
        query_or_queries: str | Sequence[str],
        k: int | None = None,
        by_prob: bool = True,
        with_metadata: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``Prediction(passages=[...])``; with ``with_metadata``, every field of the passages."""
        queries = _queries(query_or_queries)
        k = k if k is not None else self.k
        if not with_metadata:
            return Prediction(passages=retrieveEnsemble(queries, k=k, by_prob=by_prob, **kwargs))
        results = [retrievewithMetadata(q, k, **kwargs) for q in queries if q]
        if len(results) == 1:
            return _as_prediction(results[0])
        return [_as_prediction(r) for r in results]


class RetrieveThenRerank(_RetrieverBase):
    """Retrieve ``3 * k`` passages per query, rerank with the configured ``reranker``, keep ``k``.

    The reranker is ``configure(reranker=fn)`` with ``fn(query, passages) -> scores``.
    """

    desc = (
        "takes a search query and returns one or more potentially relevant passages followed by "
        "reranking from a corpus"
    )

    def forward(
        self,
        query_or_queries: str | Sequence[str],
        k: int | None = None,
        with_metadata: bool = False,
        **kwargs: Any,
    ) -> Any:
        """The reranked passage texts (DSPy 2.4 returned a plain list here)."""
        settings = current_settings()
        reranker = settings.get("reranker")
        if settings.rm is None or reranker is None:
            raise ConfigError(
                "RetrieveThenRerank needs both a retrieval model and a reranker: "
                "tgispy.configure(rm=..., reranker=lambda query, passages: scores)"
            )
        k = k if k is not None else self.k
        queries = [q for q in _queries(query_or_queries) if q]
        per_query: list[list[Any]] = []
        totals: dict[str, list[float]] = {}
        for query in queries:
            retrieved = retrievewithMetadata(query, k * 3, **kwargs)
            texts = [p if isinstance(p, str) else _get(p, "long_text") for p in retrieved]
            scores = [float(s) for s in reranker(query, texts)]
            order = sorted(range(len(texts)), key=lambda i: scores[i], reverse=True)
            kept: list[Any] = []
            for idx in order:
                totals.setdefault(texts[idx], []).append(scores[idx])
                if len(kept) < k:
                    passage = retrieved[idx]
                    if isinstance(passage, dict):
                        passage = {**passage, "rerank_score": scores[idx]}
                    kept.append(passage)
            per_query.append(kept)
        if with_metadata:
            predictions = [_as_prediction(p) for p in per_query]
            return predictions[0] if len(predictions) == 1 else predictions
        averaged = sorted(((sum(v) / len(v), t) for t, v in totals.items()), reverse=True)
        return [text for _, text in averaged[:k]]
