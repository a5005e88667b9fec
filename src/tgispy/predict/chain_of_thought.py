"""DSPy 2.4's ``dspy.predict.chain_of_thought`` path: ``ChainOfThought``."""

from tgispy.predict._chain_of_thought import ChainOfThought

__all__ = ["ChainOfThought"]
