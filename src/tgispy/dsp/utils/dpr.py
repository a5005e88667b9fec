"""DSPy 2.4's ``dsp.utils.dpr`` path (``from dsp.utils.dpr import DPR_normalize``)."""

from tgispy.dsp._dpr import DPR_normalize, DPR_tokenize, has_answer, locate_answers, strip_accents

__all__ = ["DPR_normalize", "DPR_tokenize", "has_answer", "locate_answers", "strip_accents"]
