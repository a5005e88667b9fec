"""Evaluation: ``Evaluate`` (parallel runs with progress, tables, files) and DSPy 2.4's metrics.

Example:
    >>> import tgispy as dspy
    >>> from tgispy.evaluate import Evaluate, answer_exact_match
    >>> from tgispy.utils.dummies import DummyLM
    >>> dspy.configure(lm=DummyLM({"2+2": "4"}))
    >>> devset = [dspy.Example(question="2+2?", answer="4").with_inputs("question")]
    >>> Evaluate(devset=devset, metric=answer_exact_match)(dspy.Predict("question -> answer"))
    100.0
"""

from tgispy._public import publish as _publish
from tgispy.evaluate._evaluate import Evaluate
from tgispy.evaluate._metrics import (
    EM,
    F1,
    answer_exact_match,
    answer_exact_match_str,
    answer_match,
    answer_passage_match,
    em_score,
    f1_score,
    normalize_text,
    passage_has_answers,
    passage_match,
)
from tgispy.evaluate._outcome import error_kind
from tgispy.evaluate._result import (
    ErrorInfo,
    EvaluationError,
    EvaluationResult,
    ExampleResult,
    FailedPrediction,
)

__all__ = [
    "EM",
    "F1",
    "ErrorInfo",
    "Evaluate",
    "EvaluationError",
    "EvaluationResult",
    "ExampleResult",
    "FailedPrediction",
    "answer_exact_match",
    "answer_exact_match_str",
    "answer_match",
    "answer_passage_match",
    "em_score",
    "error_kind",
    "f1_score",
    "normalize_text",
    "passage_has_answers",
    "passage_match",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
