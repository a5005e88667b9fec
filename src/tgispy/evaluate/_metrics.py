"""DSPy 2.4's answer metrics (``dspy.evaluate.metrics`` and ``dsp.utils.metrics``), pure functions.

Text is normalized as in SQuAD's evaluation script (lower case, no punctuation, no articles, single
spaces). Passage matching tokenizes as DPR's ``SimpleTokenizer`` did (runs of letters, digits and
combining marks; every other non-space character is a token of its own).

Example:
    >>> import tgispy as dspy
    >>> from tgispy.evaluate import answer_exact_match
    >>> answer_exact_match(dspy.Example(answer="Paris"), dspy.Prediction(answer="paris."))
    True
"""

from __future__ import annotations

import logging
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tgispy.errors import ConfigError

__all__ = [
    "EM",
    "F1",
    "answer_exact_match",
    "answer_exact_match_str",
    "answer_match",
    "answer_passage_match",
    "dpr_tokens",
    "em_score",
    "f1_score",
    "normalize_text",
    "passage_has_answers",
    "passage_match",
]

logger = logging.getLogger(__name__)

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_text(s: str) -> str:
    """SQuAD normalization: NFD, lower case, drop punctuation and articles, single spaces.

    Example:
        >>> normalize_text("The  Eiffel Tower!")
        'eiffel tower'
    """
    text = unicodedata.normalize("NFD", s).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def em_score(prediction: str, ground_truth: str) -> bool:
    """Whether the two strings are equal after :func:`normalize_text`."""
    return normalize_text(prediction) == normalize_text(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 between the normalized strings (SQuAD / HotPotQA)."""
    prediction_tokens = normalize_text(prediction).split()
    ground_truth_tokens = normalize_text(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if len(prediction_tokens) == len(ground_truth_tokens) == 0:
        logger.debug("F1 of two empty strings: scored 0")
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def EM(prediction: str, answers_list: Sequence[str]) -> bool:
    """Exact match against any of ``answers_list`` (after normalization)."""
    _check_answers(answers_list)
    return max(em_score(prediction, ans) for ans in answers_list)


def F1(prediction: str, answers_list: Sequence[str]) -> float:
    """The best token F1 against ``answers_list``."""
    _check_answers(answers_list)
    return max(f1_score(prediction, ans) for ans in answers_list)


def answer_match(prediction: str, answers: Sequence[str], frac: float = 1.0) -> bool:
    """Exact match when ``frac >= 1``, else whether the best F1 reaches ``frac``.

    Example:
        >>> answer_match("Paris, France", ["Paris"], frac=0.5)
        True
    """
    if frac >= 1.0:
        return EM(prediction, answers)
    return F1(prediction, answers) >= frac


answer_exact_match_str = answer_match


def answer_exact_match(example: Any, pred: Any, trace: Any = None, frac: float = 1.0) -> bool:
    """``pred.answer`` matches ``example.answer`` (a string or a list of accepted answers).

    Args:
        example: the gold example, with an ``answer`` field.
        pred: the prediction, with an ``answer`` field.
        trace: ignored (optimizers pass it).
        frac: ``1.0`` for exact match, less for an F1 threshold.

    Example:
        >>> import tgispy as dspy
        >>> answer_exact_match(dspy.Example(answer=["4", "four"]), dspy.Prediction(answer="Four"))
        True
    """
    return answer_match(pred.answer, _answers(example), frac=frac)


def answer_passage_match(example: Any, pred: Any, trace: Any = None) -> bool:
    """Some passage of ``pred.context`` contains ``example.answer`` (DPR's token match).

    Example:
        >>> import tgispy as dspy
        >>> answer_passage_match(dspy.Example(answer="Paris"),
        ...                      dspy.Prediction(context=["Paris is in France."]))
        True
    """
    return passage_match(pred.context, _answers(example))


def _answers(example: Any) -> list[str]:
    answer = example.answer
    if isinstance(answer, str):
        return [answer]
    if isinstance(answer, list):
        return answer
    raise ConfigError(
        f"example.answer must be a string or a list of strings, got {type(answer).__name__}"
    )


def _check_answers(answers_list: Any) -> None:
    if not isinstance(answers_list, list | tuple) or not answers_list:
        raise ConfigError("answers_list must be a non-empty list of accepted answers")


# ---- DPR passage matching ----------------------------------------------------------------------


def _is_alnum_char(ch: str) -> bool:
    # DPR's ALPHA_NUM: [\p{L}\p{N}\p{M}]
    return unicodedata.category(ch)[0] in "LNM"


def _is_token_char(ch: str) -> bool:
    # DPR's NON_WS: [^\p{Z}\p{C}]
    return unicodedata.category(ch)[0] not in "ZC"


def dpr_tokens(text: str) -> list[str]:
    """DPR's ``DPR_normalize``: NFD, then lower-cased tokens of ``SimpleTokenizer``.

    Example:
        >>> dpr_tokens("Paris, France")
        ['paris', ',', 'france']
    """
    text = unicodedata.normalize("NFD", text)
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if _is_alnum_char(ch):
            j = i + 1
            while j < n and _is_alnum_char(text[j]):
                j += 1
            tokens.append(text[i:j].lower())
            i = j
        else:
            if _is_token_char(ch):
                tokens.append(ch.lower())
            i += 1
    return tokens


def _has_answer(tokenized_answers: list[list[str]], text: str) -> bool:
    tokens = dpr_tokens(text)
    for answer in tokenized_answers:
        width = len(answer)
        for i in range(len(tokens) - width + 1):
            if tokens[i : i + width] == answer:
                return True
    return False


def passage_has_answers(passage: str, answers: Sequence[str]) -> bool:
    """Whether ``passage`` contains one of ``answers`` as a whole-token sequence."""
    return _has_answer(
        [dpr_tokens(normalize_text(ans)) for ans in answers], normalize_text(passage)
    )


def passage_match(passages: Sequence[str], answers: Sequence[str]) -> bool:
    """Whether any of ``passages`` contains one of ``answers``."""
    if isinstance(passages, str):
        passages = [passages]
    return any(passage_has_answers(psg, answers) for psg in passages)
