"""``LabeledFewShot``: put (a sample of) the training examples into every predictor's demos."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.primitives import Example
from tgispy.teleprompt._teleprompter import Teleprompter, check_module, check_trainset

__all__ = ["LabeledFewShot"]


class LabeledFewShot(Teleprompter):
    """Give each predictor ``k`` training examples as demos (DSPy 2.4 semantics).

    With ``sample=True`` each predictor gets ``random.Random(0).sample(trainset, k)`` (one
    generator for all predictors, in order), else the first ``k`` examples. The student is
    copied (``reset_copy``), never changed.

    Args:
        k: how many demos per predictor.

    Example:
        >>> import tgispy as dspy
        >>> trainset = [dspy.Example(question="2+2?", answer="4").with_inputs("question")]
        >>> compiled = LabeledFewShot(k=4).compile(dspy.Predict("question -> answer"),
        ...                                        trainset=trainset)
        >>> compiled.demos[0].answer
        '4'
    """

    def __init__(self, k: int = 16) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ConfigError(f"k must be an int >= 0, got {k!r}")
        self.k = k

    def compile(  # type: ignore[override]
        self, student: Any, *, trainset: Sequence[Example], sample: bool = True
    ) -> Any:
        """A copy of ``student`` whose predictors have ``k`` demos from ``trainset``."""
        check_module(student)
        self.student = student.reset_copy()
        self.trainset = check_trainset(trainset)
        if len(self.trainset) == 0:
            return self.student
        rng = random.Random(0)
        for predictor in self.student.predictors():
            if sample:
                predictor.demos = rng.sample(self.trainset, min(self.k, len(self.trainset)))
            else:
                predictor.demos = self.trainset[: min(self.k, len(self.trainset))]
        return self.student
