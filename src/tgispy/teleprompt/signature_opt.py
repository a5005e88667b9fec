"""DSPy 2.4's ``dspy.teleprompt.signature_opt`` module path."""

from tgispy.teleprompt import SignatureOptimizer

__all__ = ["SignatureOptimizer"]
