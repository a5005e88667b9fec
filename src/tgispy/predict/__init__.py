"""Predictors: ``Predict`` and ``ChainOfThought``."""

from tgispy._public import publish as _publish
from tgispy.predict._chain_of_thought import ChainOfThought
from tgispy.predict._knn import KNN, LexicalVectorizer
from tgispy.predict._predict import Predict
from tgispy.primitives._module import Parameter

__all__ = ["KNN", "ChainOfThought", "LexicalVectorizer", "Parameter", "Predict"]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
