"""DSPy 2.4's ``dspy.signatures.field`` path: ``InputField``, ``OutputField``, ``OldField``, ..."""

from tgispy.signatures._field import DSPY_FIELD_ARG_NAMES, InputField, OutputField
from tgispy.signatures._legacy import (
    OldField,
    OldInputField,
    OldOutputField,
    move_kwargs,
    new_to_old_field,
)

__all__ = [
    "DSPY_FIELD_ARG_NAMES",
    "InputField",
    "OldField",
    "OldInputField",
    "OldOutputField",
    "OutputField",
    "move_kwargs",
    "new_to_old_field",
]
