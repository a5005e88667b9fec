"""DSPy 2.4's ``dsp.utils``: ``dotdict``, ``deduplicate``, ``normalize_text``, ``EM``, ``F1``, ...

``dsp.utils.settings`` is ``tgispy.settings``, as in DSPy 2.4.

Example:
    >>> from tgispy.dsp.utils import EM, dotdict
    >>> EM("Paris.", ["paris"]), dotdict(a=1).a
    (True, 1)
"""

from __future__ import annotations

from tgispy._public import publish as _publish
from tgispy._settings import settings
from tgispy.dsp._dpr import DPR_normalize, DPR_tokenize, has_answer, locate_answers, strip_accents
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
from tgispy.dsp._utils import (
    batch,
    deduplicate,
    dotdict,
    dotdict_lax,
    flatten,
    groupby_first_item,
    grouper,
    zip_first,
    zipstar,
)

__all__ = [
    "EM",
    "F1",
    "DPR_normalize",
    "DPR_tokenize",
    "HotPotF1",
    "batch",
    "deduplicate",
    "dotdict",
    "dotdict_lax",
    "em_score",
    "f1_score",
    "flatten",
    "groupby_first_item",
    "grouper",
    "has_answer",
    "hotpot_f1_score",
    "locate_answers",
    "nF1",
    "normalize_text",
    "novel_f1_score",
    "precision_score",
    "settings",
    "strip_accents",
    "zip_first",
    "zipstar",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
