"""Retrieval: ``Retrieve`` and ``RetrieveThenRerank`` over the configured ``rm``; ``ColBERTv2`` (a
ColBERTv2 search server's client) and ``BM25`` (an embedded index, also served over ColBERTv2's
protocol by ``tgispy serve-rm``).

``BM25`` is pure Python rather than ``bm25s``: ``bm25s`` needs numpy and scipy (over 100 MB) for
sparse matrices, while an inverted index in the core install scores a few thousand passages in
milliseconds and uses bm25s's default (Lucene) scoring formula.

Example:
    >>> import tgispy as dspy
    >>> dspy.configure(rm=lambda query, k: ["Paris is in France."][:k])
    >>> dspy.Retrieve(k=1)("Where is Paris?").passages
    ['Paris is in France.']
"""

from tgispy._public import publish as _publish
from tgispy.retrieve._bm25 import BM25
from tgispy.retrieve._colbert import (
    ColBERTv2,
    ColBERTv2RerankerLocal,
    ColBERTv2RetrieverLocal,
    Pyserini,
    RetrieverError,
)
from tgispy.retrieve._retrieve import Retrieve, RetrieveThenRerank

__all__ = [
    "BM25",
    "ColBERTv2",
    "ColBERTv2RerankerLocal",
    "ColBERTv2RetrieverLocal",
    "Pyserini",
    "Retrieve",
    "RetrieveThenRerank",
    "RetrieverError",
]

_publish(__name__, globals(), __all__)

_PATH_MODULES = frozenset({"retrieve"})


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> object:
    if name in _PATH_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
