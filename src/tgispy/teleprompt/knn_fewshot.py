"""DSPy 2.4's ``dspy.teleprompt.knn_fewshot`` module path."""

from tgispy.teleprompt import KNNFewShot

__all__ = ["KNNFewShot"]
