"""tgispy: DSPy-compatible LM programs over HuggingFace text-generation-inference fleets."""

from tgispy.errors import TGIError, TgispyError
from tgispy.lm import LM

__version__ = "0.1.0"

__all__ = ["LM", "TGIError", "TgispyError", "__version__"]
