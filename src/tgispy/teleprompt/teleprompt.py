"""DSPy 2.4's ``dspy.teleprompt.teleprompt`` module path."""

from tgispy.teleprompt import Teleprompter

__all__ = ["Teleprompter"]
