"""DSPy 2.4's ``dspy.predict.predict`` path: ``Predict``."""

from tgispy.predict._predict import Predict

__all__ = ["Predict"]
