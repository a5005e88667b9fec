"""DSPy 2.4's ``dspy.teleprompt.mipro_optimizer`` module path."""

from tgispy.teleprompt import MIPRO

__all__ = ["MIPRO"]
