"""DSPy 2.4's ``dspy.predict.multi_chain_comparison`` path: ``MultiChainComparison``."""

from tgispy.predict._multi_chain_comparison import MultiChainComparison

__all__ = ["MultiChainComparison"]
