"""Signatures: declare what a predictor takes and produces."""

from tgispy._public import publish as _publish
from tgispy.signatures._field import DSPY_FIELD_ARG_NAMES, FieldInfo, InputField, OutputField
from tgispy.signatures._legacy import (
    OldField,
    OldInputField,
    OldOutputField,
    move_kwargs,
    new_to_old_field,
    replace_signature,
    signature_to_template,
    update_signatures,
)
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
    "OldField",
    "OldInputField",
    "OldOutputField",
    "OutputField",
    "Signature",
    "SignatureMeta",
    "ensure_signature",
    "has_typed_outputs",
    "infer_prefix",
    "is_typed",
    "make_signature",
    "move_kwargs",
    "new_to_old_field",
    "replace_signature",
    "signature_to_template",
    "update_signatures",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)


# DSPy 2.4's module paths (``dspy.signatures.<name>``), loaded on first attribute access.
_PATH_MODULES = frozenset({"field", "signature"})


def __getattr__(name: str) -> object:
    if name in _PATH_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
