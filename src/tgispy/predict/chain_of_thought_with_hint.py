"""DSPy 2.4's ``dspy.predict.chain_of_thought_with_hint`` path: ``ChainOfThoughtWithHint``."""

from tgispy.predict._chain_of_thought_with_hint import ChainOfThoughtWithHint

__all__ = ["ChainOfThoughtWithHint"]
