"""DSPy 2.4's ``dspy.teleprompt.vanilla`` module path."""

from tgispy.teleprompt import LabeledFewShot

__all__ = ["LabeledFewShot"]
