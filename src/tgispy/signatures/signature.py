"""DSPy 2.4's ``dspy.signatures.signature`` path: ``Signature``, ``ensure_signature``, ..."""

from tgispy.signatures._legacy import signature_to_template
from tgispy.signatures._signature import (
    Signature,
    SignatureMeta,
    ensure_signature,
    infer_prefix,
    make_signature,
)

__all__ = [
    "Signature",
    "SignatureMeta",
    "ensure_signature",
    "infer_prefix",
    "make_signature",
    "signature_to_template",
]
