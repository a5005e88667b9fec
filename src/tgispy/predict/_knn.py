"""``KNN``: the ``k`` training examples nearest to the inputs (DSPy 2.4's ``dspy.predict.KNN``).

Embeddings come from a *vectorizer*: DSPy 2.4's interface, a callable taking a list of strings
and returning one vector per string (a numpy array ``(n, d)`` or any sequence of sequences), so
DSPy 2.4 vectorizers (``dsp.SentenceTransformersVectorizer``, ...) plug in unchanged.
The default, :class:`LexicalVectorizer`, needs no model and no dependency: hashed TF-IDF over
words and word pairs, L2-normalized, so scores are cosine similarities of the word overlap.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.primitives._example import Example

__all__ = ["KNN", "LexicalVectorizer"]

_WORD = re.compile(r"\w+")


class LexicalVectorizer:
    """Hashed TF-IDF vectors of lowercase words and adjacent word pairs; offline, deterministic.

    Terms are hashed (CRC-32) into ``dim`` buckets; a term's weight is ``(1 + log tf) * idf``
    with sklearn's smoothed ``idf = log((1 + N) / (1 + df)) + 1``, and each vector is scaled to
    unit length. The IDF is learnt from the first batch it vectorizes (``KNN`` passes its
    training set first) and kept; call :meth:`fit` to learn it from another corpus.

    Args:
        dim: the number of hash buckets (the vector length).
        ngrams: 1 for words only, 2 for words and adjacent word pairs.

    Example:
        >>> v = LexicalVectorizer(dim=64)
        >>> a, b, c = v(["capital of France", "capital of Peru", "two plus two"])
        >>> sum(x * y for x, y in zip(a, b)) > sum(x * y for x, y in zip(a, c))
        True
    """

    def __init__(self, dim: int = 1024, ngrams: int = 2) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise ConfigError(f"dim must be an int >= 1, got {dim!r}")
        if ngrams not in (1, 2):
            raise ConfigError(f"ngrams must be 1 or 2, got {ngrams!r}")
        self.dim = dim
        self.ngrams = ngrams
        self.idf: list[float] | None = None
        self._lock = threading.Lock()

    def _buckets(self, text: str) -> Counter[int]:
        words = _WORD.findall(text.lower())
        terms = list(words)
        if self.ngrams == 2:
            terms += [f"{a} {b}" for a, b in itertools.pairwise(words)]
        return Counter(zlib.crc32(term.encode()) % self.dim for term in terms)

    def fit(self, texts: Sequence[str]) -> LexicalVectorizer:
        """Learn the IDF weights from ``texts``; returns ``self``."""
        df = [0] * self.dim
        for text in texts:
            for bucket in self._buckets(text):
                df[bucket] += 1
        n = len(texts)
        self.idf = [math.log((1 + n) / (1 + d)) + 1 for d in df]
        return self

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        with self._lock:
            if self.idf is None:
                self.fit(texts)
        idf = self.idf
        assert idf is not None
        vectors = []
        for text in texts:
            vector = [0.0] * self.dim
            for bucket, count in self._buckets(text).items():
                vector[bucket] = (1 + math.log(count)) * idf[bucket]
            norm = math.sqrt(sum(x * x for x in vector))
            vectors.append([x / norm for x in vector] if norm else vector)
        return vectors

    def __repr__(self) -> str:
        return f"LexicalVectorizer(dim={self.dim}, ngrams={self.ngrams})"


def _rows(vectors: Any) -> list[list[float]]:
    rows = vectors.tolist() if callable(getattr(vectors, "tolist", None)) else vectors
    return [[float(x) for x in row] for row in rows]


class KNN:
    """Pick the ``k`` training examples most similar to a call's inputs.

    Each training example is embedded as ``"key: value | key: value"`` over its input keys, the
    query the same way over the call's keyword arguments; the score is the dot product. The
    result is ordered best first; tied scores put the later example first (DSPy 2.4's order
    among ties was whatever numpy's ``argsort`` kernel for the CPU gave).

    Args:
        k: how many examples to return.
        trainset: the examples (with input keys marked).
        vectorizer: ``vectorizer(list_of_strings) -> vectors``; default
            :class:`LexicalVectorizer` (offline). DSPy 2.4's default needed
            sentence-transformers weights.

    Example:
        >>> from tgispy import Example
        >>> train = [Example(question=q, answer=a).with_inputs("question")
        ...          for q, a in [("capital of France?", "Paris"), ("2 plus 2?", "4")]]
        >>> KNN(1, train)(question="What is the capital of France?")[0].answer
        'Paris'
    """

    def __init__(
        self,
        k: int,
        trainset: Sequence[Example],
        vectorizer: Callable[[list[str]], Any] | None = None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be an int >= 1, got {k!r}")
        self.k = k
        self.trainset = list(trainset)
        if not self.trainset:
            raise ConfigError("KNN needs a non-empty trainset")
        self.vectorizer: Callable[[list[str]], Any] = vectorizer or LexicalVectorizer()
        texts = [
            " | ".join(
                f"{key}: {value}"
                for key, value in example.items()
                if key in (example._input_keys or ())
            )
            for example in self.trainset
        ]
        self.trainset_vectors = _rows(self.vectorizer(texts))

    def __call__(self, **kwargs: Any) -> list[Example]:
        """The ``k`` nearest training examples to ``kwargs``, nearest first."""
        query_text = " | ".join(f"{key}: {val}" for key, val in kwargs.items())
        (query,) = _rows(self.vectorizer([query_text]))
        scores = [
            sum(a * b for a, b in zip(row, query, strict=True)) for row in self.trainset_vectors
        ]
        # DSPy's argsort()[-k:][::-1]: ascending (here stable), the last k, reversed.
        order = sorted(range(len(scores)), key=scores.__getitem__)
        return [self.trainset[i] for i in order[-self.k :][::-1]]
