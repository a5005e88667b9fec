"""DSPy 2.4's ``dspy.predict.knn`` path: ``KNN``."""

from tgispy.predict._knn import KNN

__all__ = ["KNN"]
