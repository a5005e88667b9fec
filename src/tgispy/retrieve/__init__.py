"""Retrieval: ``Retrieve`` and ``RetrieveThenRerank`` over the configured ``rm``.

Example:
    >>> import tgispy as dspy
    >>> dspy.configure(rm=lambda query, k: ["Paris is in France."][:k])
    >>> dspy.Retrieve(k=1)("Where is Paris?").passages
    ['Paris is in France.']
"""

from tgispy._public import publish as _publish
from tgispy.retrieve._retrieve import Retrieve, RetrieveThenRerank

__all__ = ["Retrieve", "RetrieveThenRerank"]

_publish(__name__, globals(), __all__)

_PATH_MODULES = frozenset({"retrieve"})


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> object:
    if name in _PATH_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
