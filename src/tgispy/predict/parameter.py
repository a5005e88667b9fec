"""DSPy 2.4's ``dspy.predict.parameter`` path: ``Parameter``."""

from tgispy.primitives._module import Parameter

__all__ = ["Parameter"]
