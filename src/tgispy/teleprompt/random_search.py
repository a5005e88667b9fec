"""DSPy 2.4's ``dspy.teleprompt.random_search`` module path."""

from tgispy.teleprompt import BootstrapFewShotWithRandomSearch, BootstrapRS

__all__ = ["BootstrapFewShotWithRandomSearch", "BootstrapRS"]
