"""``KNNFewShot``: per call, bootstrap demos from the training examples nearest to the inputs."""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

from tgispy.predict._knn import KNN
from tgispy.primitives import Example
from tgispy.teleprompt._bootstrap import BootstrapFewShot
from tgispy.teleprompt._teleprompter import Teleprompter, check_module

__all__ = ["KNNFewShot"]


class KNNFewShot(Teleprompter):
    """Compile a program whose every call runs ``BootstrapFewShot`` on the ``k`` nearest examples.

    As in DSPy 2.4: the compiled program is a copy of the student whose ``forward`` (and here
    ``aforward``) first finds the ``k`` training examples nearest to the call's inputs with
    :class:`~tgispy.predict.KNN`, compiles the student on them with
    ``BootstrapFewShot(**few_shot_bootstrap_args)``, and runs the result.

    Args:
        k: nearest examples per call.
        trainset: the pool of examples.
        vectorizer: DSPy 2.4's vectorizer interface (``list[str] -> vectors``); default the
            offline :class:`~tgispy.predict.LexicalVectorizer`.
        **few_shot_bootstrap_args: passed to :class:`BootstrapFewShot`.

    Example:
        >>> import tgispy as dspy
        >>> train = [dspy.Example(question="2+2?", answer="4").with_inputs("question")]
        >>> knn = KNNFewShot(1, train, max_bootstrapped_demos=1)
        >>> program = knn.compile(dspy.Predict("question -> answer"))
        >>> knn.KNN(question="3+3?")[0].answer
        '4'
    """

    def __init__(
        self,
        k: int,
        trainset: Sequence[Example],
        vectorizer: Callable[[list[str]], Any] | None = None,
        **few_shot_bootstrap_args: Any,
    ) -> None:
        self.KNN = KNN(k, trainset, vectorizer=vectorizer)
        self.few_shot_bootstrap_args = few_shot_bootstrap_args

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        teacher: Any = None,
        trainset: Sequence[Example] | None = None,
        valset: Sequence[Example] | None = None,
    ) -> Any:
        """A copy of ``student`` that bootstraps its demos per call (``trainset`` is unused)."""
        check_module(student)
        student_copy = student.reset_copy()
        knn = self.KNN
        bootstrap_args = self.few_shot_bootstrap_args

        async def aforward_pass(_: Any, **kwargs: Any) -> Any:
            optimizer = BootstrapFewShot(**bootstrap_args)
            compiled = await optimizer.acompile(student, teacher=teacher, trainset=knn(**kwargs))
            return await compiled.acall(**kwargs)

        def forward_pass(_: Any, **kwargs: Any) -> Any:
            optimizer = BootstrapFewShot(**bootstrap_args)
            compiled = optimizer.compile(student, teacher=teacher, trainset=knn(**kwargs))
            return compiled(**kwargs)

        student_copy.forward = types.MethodType(forward_pass, student_copy)
        student_copy.aforward = types.MethodType(aforward_pass, student_copy)
        return student_copy
