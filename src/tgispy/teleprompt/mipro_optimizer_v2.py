"""DSPy 2.4's ``dspy.teleprompt.mipro_optimizer_v2`` module path."""

from tgispy.teleprompt import MIPROv2

__all__ = ["MIPROv2"]
