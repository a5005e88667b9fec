"""DSPy 2.4's ``dspy.teleprompt.copro_optimizer`` module path."""

from tgispy.teleprompt import COPRO

__all__ = ["COPRO"]
