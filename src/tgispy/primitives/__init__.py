"""Primitives: ``Example``, ``Prediction``, ``Completions`` and the ``Module`` base class."""

from tgispy.primitives._example import Example
from tgispy.primitives._module import BaseModule, Module, Parameter, Program
from tgispy.primitives._prediction import Completions, Prediction

__all__ = [
    "BaseModule",
    "Completions",
    "Example",
    "Module",
    "Parameter",
    "Prediction",
    "Program",
]
