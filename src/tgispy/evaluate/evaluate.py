"""DSPy 2.4's ``dspy.evaluate.evaluate`` module path."""

from tgispy.evaluate import Evaluate

__all__ = ["Evaluate"]
