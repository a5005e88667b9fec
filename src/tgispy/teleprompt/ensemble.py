"""DSPy 2.4's ``dspy.teleprompt.ensemble`` module path."""

from tgispy.teleprompt import Ensemble

__all__ = ["Ensemble"]
