"""Datasets: ``Dataset``, ``DataLoader`` and DSPy 2.4's ``HotPotQA``, ``GSM8K``, ``Colors``.

Nothing here imports pandas, pyarrow or ``datasets`` until a method needs it
(``pip install 'tgispy[datasets]'``). Local CSV and JSON files need no extra.

Example:
    >>> from tgispy.datasets import Colors
    >>> Colors().train[0].keys()
    ['color']
"""

from tgispy._public import publish as _publish
from tgispy.datasets._colors import Colors
from tgispy.datasets._dataloader import DataLoader
from tgispy.datasets._dataset import Dataset, dotdict
from tgispy.datasets._gsm8k import GSM8K, gsm8k_metric, parse_integer_answer
from tgispy.datasets._hotpotqa import HotPotQA

__all__ = [
    "GSM8K",
    "Colors",
    "DataLoader",
    "Dataset",
    "HotPotQA",
    "dotdict",
    "gsm8k_metric",
    "parse_integer_answer",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
