"""DSPy 2.4's ``dspy.evaluate.metrics`` module path."""

from tgispy.evaluate import answer_exact_match, answer_passage_match

__all__ = ["answer_exact_match", "answer_passage_match"]
