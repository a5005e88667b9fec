"""DSPy 2.4's ``dsp`` package, the parts real programs use: ``dsp.settings``, ``dsp.utils``, ...

``import tgispy.dsp as dsp`` (or, through :mod:`tgispy.compat`, plain ``import dsp``) offers
``dsp.settings`` (the same object as ``tgispy.settings``), ``dsp.utils`` (``dotdict``,
``deduplicate``, ``normalize_text``, ``EM``, ``F1``, ``DPR_normalize``, ...), the answer matching
helpers (``answer_match``, ``passage_match``), ``passages2text`` and the retrieval helpers
(``retrieve``, ``retrieveEnsemble``) over the configured ``rm``.

Example:
    >>> import tgispy.dsp as dsp
    >>> dsp.utils.deduplicate(["a", "b", "a"])
    ['a', 'b']
"""

from __future__ import annotations

import importlib
from typing import Any

from tgispy._public import publish as _publish
from tgispy._settings import settings
from tgispy.adapters._template import Template, passages2text
from tgispy.dsp import utils
from tgispy.dsp._dpr import DPR_normalize, DPR_tokenize, has_answer
from tgispy.dsp._metrics import EM, F1, HotPotF1, nF1, normalize_text
from tgispy.dsp._search import (
    answer_match,
    passage_has_answers,
    passage_match,
    retrieve,
    retrieveEnsemble,
    retrievewithMetadata,
)
from tgispy.dsp._utils import dotdict
from tgispy.primitives._example import Example

_LAZY: dict[str, tuple[str, str]] = {
    "HFClientTGI": ("tgispy.lm._tgi", "HFClientTGI"),
    "LM": ("tgispy.lm", "LM"),
    "ColBERTv2": ("tgispy.retrieve", "ColBERTv2"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'tgispy.dsp' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


__all__ = [
    "EM",
    "F1",
    "DPR_normalize",
    "DPR_tokenize",
    "Example",
    "HotPotF1",
    "Template",
    "answer_match",
    "dotdict",
    "has_answer",
    "nF1",
    "normalize_text",
    "passage_has_answers",
    "passage_match",
    "passages2text",
    "retrieve",
    "retrieveEnsemble",
    "retrievewithMetadata",
    "settings",
    "utils",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
