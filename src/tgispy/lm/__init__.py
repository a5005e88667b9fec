"""Language models: the LM base class and the TGI client."""

from tgispy._public import publish as _publish
from tgispy.lm._base import LM, Completion, Generation, History

__all__ = ["LM", "Completion", "Generation", "History"]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
