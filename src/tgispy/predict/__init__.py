"""Predictors: ``Predict`` and ``ChainOfThought``."""

from tgispy.predict._chain_of_thought import ChainOfThought
from tgispy.predict._predict import Predict
from tgispy.primitives._module import Parameter

__all__ = ["ChainOfThought", "Parameter", "Predict"]
