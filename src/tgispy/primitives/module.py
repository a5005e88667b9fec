"""DSPy 2.4's ``dspy.primitives.module`` path: ``BaseModule``."""

from tgispy.primitives._module import BaseModule

__all__ = ["BaseModule"]
