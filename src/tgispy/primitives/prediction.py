"""DSPy 2.4's ``dspy.primitives.prediction`` path: ``Prediction``, ``Completions``."""

from tgispy.primitives._prediction import Completions, Prediction

__all__ = ["Completions", "Prediction"]
