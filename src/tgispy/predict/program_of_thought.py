"""DSPy 2.4's ``dspy.predict.program_of_thought`` path: ``ProgramOfThought``."""

from tgispy.predict._program_of_thought import ProgramOfThought

__all__ = ["ProgramOfThought"]
