"""DSPy 2.4's ``dspy.primitives.program`` path: ``Module``, ``Program``, ``ProgramMeta``."""

from tgispy.primitives._module import (
    BaseModule,
    Module,
    Program,
    ProgramMeta,
    set_attribute_by_name,
)

__all__ = ["BaseModule", "Module", "Program", "ProgramMeta", "set_attribute_by_name"]
