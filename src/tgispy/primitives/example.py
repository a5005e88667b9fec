"""DSPy 2.4's ``dspy.primitives.example`` path: ``Example``."""

from tgispy.primitives._example import Example

__all__ = ["Example"]
