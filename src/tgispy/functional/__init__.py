"""Typed predictors, DSPy 2.4's ``dspy.functional``: ``TypedPredictor``, ``TypedChainOfThought``,
``predictor``, ``cot`` and ``FunctionalModule``.

Example:
    >>> import tgispy as dspy
    >>> from tgispy.utils.dummies import DummyLM
    >>> dspy.configure(lm=DummyLM(["42"]))
    >>> TypedPredictor("question -> answer: int")(question="6 times 7?").answer
    42
"""

from tgispy._public import publish as _publish
from tgispy.functional._functional import (
    FunctionalModule,
    TypedChainOfThought,
    TypedPredictor,
    cot,
    predictor,
)

__all__ = ["FunctionalModule", "TypedChainOfThought", "TypedPredictor", "cot", "predictor"]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> object:
    if name == "functional":  # DSPy 2.4's path: dspy.functional.functional
        import importlib

        return importlib.import_module(f"{__name__}.functional")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
