"""Language models: the LM base class and the TGI client."""

from tgispy.lm._base import LM, Completion, Generation, History

__all__ = ["LM", "Completion", "Generation", "History"]
