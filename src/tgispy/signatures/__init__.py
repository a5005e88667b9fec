"""Signatures: declare what a predictor takes and produces."""

from tgispy._public import publish as _publish
from tgispy.signatures._field import DSPY_FIELD_ARG_NAMES, FieldInfo, InputField, OutputField
from tgispy.signatures._signature import (
    Signature,
    SignatureMeta,
    ensure_signature,
    infer_prefix,
    make_signature,
)
from tgispy.signatures._types import has_typed_outputs, is_typed

__all__ = [
    "DSPY_FIELD_ARG_NAMES",
    "FieldInfo",
    "InputField",
    "OutputField",
    "Signature",
    "SignatureMeta",
    "ensure_signature",
    "has_typed_outputs",
    "infer_prefix",
    "is_typed",
    "make_signature",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
