"""DSPy 2.4's ``dsp.utils.utils`` path (``from dsp.utils.utils import dotdict``)."""

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
    "batch",
    "deduplicate",
    "dotdict",
    "dotdict_lax",
    "flatten",
    "groupby_first_item",
    "grouper",
    "zip_first",
    "zipstar",
]
