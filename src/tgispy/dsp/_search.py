"""DSPy 2.4's ``dsp`` retrieval and answer matching (``dsp.retrieve``, ``dsp.answer_match``).

The retrieval model is the configured one (``configure(rm=...)``); it is called as DSPy 2.4 did,
``rm(query, k=k, **kwargs)``, and returns passages with a ``long_text`` (``dotdict``) or strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tgispy._settings import current as current_settings
from tgispy.dsp._dpr import DPR_normalize, has_answer
from tgispy.dsp._metrics import EM, F1, normalize_text
from tgispy.errors import ConfigError

__all__ = [
    "answer_match",
    "passage_has_answers",
    "passage_match",
    "retrieve",
    "retrieveEnsemble",
    "retrievewithMetadata",
]

_NO_RM = (
    "No RM is loaded. Configure one first, e.g. "
    "tgispy.configure(rm=tgispy.ColBERTv2(url='http://127.0.0.1:8893/api/search')) or "
    "tgispy.configure(rm=tgispy.retrieve.BM25('passages.jsonl'))"
)


def _rm() -> Any:
    rm = current_settings().rm
    if rm is None:
        raise ConfigError(_NO_RM)
    return rm


def _long_text(passage: Any) -> str:
    if isinstance(passage, str):
        return passage
    if isinstance(passage, dict):
        return str(passage["long_text"])
    return str(passage.long_text)


def _as_list(passages: Any) -> list[Any]:
    if isinstance(passages, str | dict) or not isinstance(passages, Iterable):
        return [passages]
    return list(passages)


def retrievewithMetadata(query: str, k: int, **kwargs: Any) -> list[Any]:
    """The configured RM's top ``k`` passages for ``query``, as it returned them."""
    return _as_list(_rm()(query, k=k, **kwargs))


def retrieve(query: str, k: int, **kwargs: Any) -> list[str]:
    """The texts of the configured RM's top ``k`` passages for ``query``.

    Example:
        >>> import tgispy as dspy
        >>> dspy.configure(rm=lambda query, k: ["Paris is in France."][:k])
        >>> retrieve("Where is Paris?", k=1)
        ['Paris is in France.']
    """
    return [_long_text(p) for p in retrievewithMetadata(query, k, **kwargs)]


def _score(passage: Any, by_prob: bool) -> float:
    key = "prob" if by_prob else "score"
    value = passage[key] if isinstance(passage, dict) else getattr(passage, key)
    return float(value)


def retrieveEnsemble(
    queries: Sequence[str], k: int, by_prob: bool = True, **kwargs: Any
) -> list[str]:
    """Top ``k`` passages over several queries, summing each passage's ``prob`` (or ``score``)."""
    rm = _rm()
    queries = [q for q in queries if q]
    if len(queries) == 1:
        return retrieve(queries[0], k, **kwargs)
    totals: dict[str, float] = {}
    for query in queries:
        for passage in _as_list(rm(query, k=k * 3, **kwargs)):
            text = _long_text(passage)
            totals[text] = totals.get(text, 0.0) + _score(passage, by_prob)
    ranked = sorted(((score, text) for text, score in totals.items()), reverse=True)[:k]
    return [text for _, text in ranked]


def passage_has_answers(passage: str, answers: Sequence[str]) -> bool:
    """Whether ``passage`` contains one of ``answers`` (DPR token match after normalization).

    Example:
        >>> passage_has_answers("The tower is in Paris.", ["paris"])
        True
    """
    return has_answer(
        [DPR_normalize(normalize_text(ans)) for ans in answers], normalize_text(passage)
    )


def passage_match(passages: Sequence[str], answers: Sequence[str]) -> bool:
    """Whether any passage contains one of the answers."""
    return any(passage_has_answers(psg, answers) for psg in passages)


def answer_match(prediction: str, answers: list[str], frac: float = 1.0) -> bool:
    """Exact match (``frac >= 1``) or F1 of at least ``frac`` against the answers.

    Example:
        >>> answer_match("Paris", ["paris"])
        True
    """
    if frac >= 1.0:
        return EM(prediction, answers)
    return F1(prediction, answers) >= frac
