"""DSPy 2.4's ``dspy.retrieve.retrieve`` path: ``Retrieve``, ``RetrieveThenRerank``."""

from tgispy.retrieve._retrieve import Retrieve, RetrieveThenRerank

__all__ = ["Retrieve", "RetrieveThenRerank"]
