"""DSPy 2.4's ``dspy.functional.functional`` path."""

from tgispy.functional._functional import (
    FunctionalModule,
    TypedChainOfThought,
    TypedPredictor,
    cot,
    predictor,
)

__all__ = ["FunctionalModule", "TypedChainOfThought", "TypedPredictor", "cot", "predictor"]
