"""DSPy 2.4's ``dspy.predict.react`` path: ``ReAct``."""

from tgispy.predict._react import ReAct

__all__ = ["ReAct"]
