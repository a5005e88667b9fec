"""DSPy 2.4's ``dspy.predict.aggregation`` path: ``majority``."""

from tgispy.predict._aggregation import default_normalize, majority

__all__ = ["default_normalize", "majority"]
