"""DSPy 2.4's ``dspy.teleprompt.bootstrap`` module path."""

from tgispy.teleprompt import BootstrapFewShot

__all__ = ["BootstrapFewShot"]
