"""DSPy 2.4's ``dspy.predict.retry`` path: ``Retry``."""

from tgispy.predict._retry import Retry

__all__ = ["Retry"]
