"""DSPy 2.4's ``dspy.teleprompt.avatar_optimizer`` module path."""

from tgispy.teleprompt import (
    ActionOutput,
    AvatarOptimizer,
    Comparator,
    EvalResult,
    FeedbackBasedInstruction,
)

__all__ = [
    "ActionOutput",
    "AvatarOptimizer",
    "Comparator",
    "EvalResult",
    "FeedbackBasedInstruction",
]
