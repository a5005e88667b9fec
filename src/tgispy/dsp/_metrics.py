"""DSPy 2.4's answer metrics (``dsp.utils.metrics``): SQuAD-style normalization, EM and F1.

Pure functions with DSPy 2.4.17's results.
"""

from __future__ import annotations

import logging
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

__all__ = [
    "EM",
    "F1",
    "HotPotF1",
    "em_score",
    "f1_score",
    "hotpot_f1_score",
    "nF1",
    "normalize_text",
    "novel_f1_score",
    "precision_score",
]

logger = logging.getLogger(__name__)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_STOPWORDS = frozenset(
    [
        "i",
        "me",
        "my",
        "myself",
        "we",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "a",
        "an",
        "the",
        "and",
        "but",
        "if",
        "or",
        "because",
        "as",
        "until",
        "while",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
    ]
)


def normalize_text(s: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (NFD first).

    Example:
        >>> normalize_text("The  Eiffel Tower!")
        'eiffel tower'
    """
    s = unicodedata.normalize("NFD", s).lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _check_list(answers_list: Sequence[str]) -> None:
    if not isinstance(answers_list, list):
        raise TypeError(f"answers_list must be a list, got {type(answers_list).__name__}")


def em_score(prediction: str, ground_truth: str) -> bool:
    """Whether the normalized texts are equal."""
    return normalize_text(prediction) == normalize_text(ground_truth)


def _f1(prediction_tokens: list[str], ground_truth_tokens: list[str]) -> float:
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 of the normalized texts.

    Example:
        >>> round(f1_score("Paris France", "Paris"), 3)
        0.667
    """
    prediction_tokens = normalize_text(prediction).split()
    ground_truth_tokens = normalize_text(ground_truth).split()
    if len(prediction_tokens) == len(ground_truth_tokens) == 0:
        logger.debug("F1 metric: both the prediction and the answer are empty")
    return _f1(prediction_tokens, ground_truth_tokens)


def precision_score(prediction: str, ground_truth: str) -> float:
    """Token-level precision of the normalized texts."""
    prediction_tokens = normalize_text(prediction).split()
    ground_truth_tokens = normalize_text(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    return 1.0 * num_same / len(prediction_tokens)


def hotpot_f1_score(prediction: str, ground_truth: str) -> float:
    """HotPotQA's F1: yes / no / noanswer must match exactly."""
    pred = normalize_text(prediction)
    gold = normalize_text(ground_truth)
    special = ("yes", "no", "noanswer")
    if (pred in special or gold in special) and pred != gold:
        return 0
    return _f1(pred.split(), gold.split())


def novel_f1_score(
    history: str, prediction: str, ground_truth: str, return_recall: bool = False
) -> float:
    """F1 over the tokens not already in ``history`` (nor stopwords)."""
    seen = set(normalize_text(history).split()) | _STOPWORDS
    pred = [t for t in normalize_text(prediction).split() if t not in seen]
    gold = [t for t in normalize_text(ground_truth).split() if t not in seen]
    common = Counter(pred) & Counter(gold)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred)
    recall = 1.0 * num_same / len(gold)
    if return_recall:
        return recall
    return (2 * precision * recall) / (precision + recall)


def EM(prediction: str, answers_list: list[str]) -> bool:
    """Exact match against any of the answers.

    Example:
        >>> EM("the Eiffel tower", ["Eiffel Tower", "tour Eiffel"])
        True
    """
    _check_list(answers_list)
    return max(em_score(prediction, ans) for ans in answers_list)


def F1(prediction: str, answers_list: list[str]) -> float:
    """Best token F1 against the answers.

    Example:
        >>> F1("Paris", ["Paris", "Rome"])
        1.0
    """
    _check_list(answers_list)
    return max(f1_score(prediction, ans) for ans in answers_list)


def HotPotF1(prediction: str, answers_list: list[str]) -> float:
    """Best HotPotQA F1 against the answers."""
    _check_list(answers_list)
    return max(hotpot_f1_score(prediction, ans) for ans in answers_list)


def nF1(
    history: str, prediction: str, answers_list: list[str], return_recall: bool = False
) -> float:
    """Best novel-token F1 against the answers."""
    _check_list(answers_list)
    return max(novel_f1_score(history, prediction, a, return_recall) for a in answers_list)
