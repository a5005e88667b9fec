"""DSPy 2.4's ``dsp.utils.metrics`` path (``from dsp.utils.metrics import EM, F1``)."""

from tgispy.dsp._metrics import (
    EM,
    F1,
    HotPotF1,
    em_score,
    f1_score,
    hotpot_f1_score,
    nF1,
    normalize_text,
    novel_f1_score,
    precision_score,
)

__all__ = [
    "EM",
    "F1",
    "HotPotF1",
    "em_score",
    "f1_score",
    "hotpot_f1_score",
    "nF1",
    "normalize_text",
    "novel_f1_score",
    "precision_score",
]
