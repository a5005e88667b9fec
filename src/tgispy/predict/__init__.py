"""Predictors: ``Predict`` and ``ChainOfThought``."""

from tgispy._public import publish as _publish
from tgispy.predict._chain_of_thought import ChainOfThought
from tgispy.predict._knn import KNN, LexicalVectorizer
from tgispy.predict._predict import Predict
from tgispy.predict._retry import Retry
from tgispy.primitives._module import Parameter

__all__ = ["KNN", "ChainOfThought", "LexicalVectorizer", "Parameter", "Predict", "Retry"]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)


# DSPy 2.4's module paths (``dspy.predict.<name>``), loaded on first attribute access.
_PATH_MODULES = frozenset({"chain_of_thought", "parameter", "predict", "retry"})


def __getattr__(name: str) -> object:
    if name in _PATH_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
