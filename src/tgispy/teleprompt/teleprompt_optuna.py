"""DSPy 2.4's ``dspy.teleprompt.teleprompt_optuna`` module path."""

from tgispy.teleprompt import BootstrapFewShotWithOptuna

__all__ = ["BootstrapFewShotWithOptuna"]
