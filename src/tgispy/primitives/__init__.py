"""Primitives: ``Example``, ``Prediction``, ``Completions`` and the ``Module`` base class."""

from tgispy._public import publish as _publish
from tgispy.primitives._example import Example
from tgispy.primitives._module import (
    BaseModule,
    Module,
    Parameter,
    Program,
    ProgramMeta,
    set_attribute_by_name,
)
from tgispy.primitives._prediction import Completions, Prediction

__all__ = [
    "BaseModule",
    "Completions",
    "Example",
    "Module",
    "Parameter",
    "Prediction",
    "Program",
    "ProgramMeta",
    "set_attribute_by_name",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
