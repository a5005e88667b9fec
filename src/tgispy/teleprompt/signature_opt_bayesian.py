"""DSPy 2.4's ``dspy.teleprompt.signature_opt_bayesian`` module path."""

from tgispy.teleprompt import BayesianSignatureOptimizer

__all__ = ["BayesianSignatureOptimizer"]
