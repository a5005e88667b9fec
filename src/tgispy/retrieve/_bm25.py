"""``BM25``: an embedded lexical retriever, usable as ``rm`` and served by ``tgispy serve-rm``.

Pure Python on purpose (see the design note in the module docstring of ``tgispy.retrieve``):
an inverted index of lower-cased word tokens, scored with BM25's Lucene variant (what ``bm25s``
computes by default), so no numpy/scipy is needed and an index loads in the core install.

The index can be saved to a JSON file and is reused when it matches the corpus and parameters.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tgispy.dsp._utils import dotdict
from tgispy.errors import ConfigError
from tgispy.retrieve._corpus import load_corpus, normalize_passages

__all__ = ["BM25", "tokenize"]

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "he",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)

_FORMAT = 1


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without English stopwords.

    Example:
        >>> tokenize("The Eiffel Tower is in Paris!")
        ['eiffel', 'tower', 'paris']
    """
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


class BM25:
    """A BM25 index over passages; call it like a DSPy retrieval model.

    Args:
        corpus: a path (``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv``) or a list of strings or
            dicts with a ``text`` field.
        k1: term-frequency saturation. b: length normalization.
        index_path: where to save the index (gzip JSON); reused when it matches the corpus.
        progress: show a progress bar while indexing.

    Example:
        >>> rm = BM25(["Paris is the capital of France.", "Rome is in Italy."], progress=False)
        >>> rm("capital of France", k=1)[0].long_text
        'Paris is the capital of France.'
    """

    def __init__(
        self,
        corpus: str | Path | Sequence[Any],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        index_path: str | Path | None = None,
        progress: bool = True,
    ) -> None:
        if isinstance(corpus, str | Path):
            passages = load_corpus(corpus)
        else:
            passages = normalize_passages(corpus)
            if not passages:
                raise ConfigError("the corpus has no passages")
        self.passages = passages
        self.k1 = k1
        self.b = b
        fingerprint = self._fingerprint()
        loaded = self._load(Path(index_path), fingerprint) if index_path else False
        if not loaded:
            self._build(progress)
            if index_path:
                self._save(Path(index_path), fingerprint)

    # ---- index ------------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([_FORMAT, self.k1, self.b]).encode())
        for passage in self.passages:
            digest.update(passage["text"].encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()

    def _build(self, progress: bool) -> None:
        items: Iterable[dict[str, Any]] = self.passages
        if progress and len(self.passages) > 1000:
            from tqdm import tqdm

            items = tqdm(self.passages, desc="Indexing passages", unit="passage")
        postings: dict[str, list[list[int]]] = {}
        lengths: list[int] = []
        for pid, passage in enumerate(items):
            counts = Counter(tokenize(passage["text"]))
            lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                postings.setdefault(term, []).append([pid, tf])
        self._postings = postings
        self._lengths = lengths
        self._avg = (sum(lengths) / len(lengths)) or 1.0

    def _save(self, path: Path, fingerprint: str) -> None:
        data = {
            "format": _FORMAT,
            "fingerprint": fingerprint,
            "postings": self._postings,
            "lengths": self._lengths,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        tmp.replace(path)

    def _load(self, path: Path, fingerprint: str) -> bool:
        if not path.is_file():
            return False
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return False  # a broken index is rebuilt
        if data.get("format") != _FORMAT or data.get("fingerprint") != fingerprint:
            return False
        self._postings = data["postings"]
        self._lengths = data["lengths"]
        self._avg = (sum(self._lengths) / len(self._lengths)) or 1.0
        return True

    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` (gzip JSON)."""
        self._save(Path(path), self._fingerprint())

    # ---- search -----------------------------------------------------------------------------
    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """The top ``k`` ``(passage index, score)`` pairs, best first (ties: lower index)."""
        n = len(self._lengths)
        scores: dict[int, float] = {}
        for term in set(tokenize(query)):
            posting = self._postings.get(term)
            if not posting:
                continue
            df = len(posting)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for pid, tf in posting:
                norm = tf + self.k1 * (1 - self.b + self.b * self._lengths[pid] / self._avg)
                scores[pid] = scores.get(pid, 0.0) + idf * tf / norm
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return ranked[: max(0, k)]

    def __call__(self, query: str, k: int = 10, **kwargs: Any) -> list[dotdict]:
        """DSPy's retrieval-model call: passages as ``dotdict`` with ``long_text``, ``score``,
        ``prob`` (softmax over the returned scores), ``pid`` and ``rank``."""
        hits = self.search(query, k)
        if not hits:
            return []
        top = max(score for _, score in hits)
        weights = [math.exp(score - top) for _, score in hits]
        total = sum(weights)
        out = []
        for rank, ((index, score), weight) in enumerate(zip(hits, weights, strict=True), 1):
            passage = self.passages[index]
            out.append(
                dotdict(
                    {
                        **passage,
                        "long_text": passage["text"],
                        "score": score,
                        "prob": weight / total,
                        "rank": rank,
                    }
                )
            )
        return out

    def __len__(self) -> int:
        return len(self.passages)

    def __repr__(self) -> str:
        return f"BM25({len(self.passages)} passages, k1={self.k1}, b={self.b})"
