"""Utilities: :mod:`tgispy.utils.dummies` (``DummyLM``) for tests, and
:func:`copy_context_runner` to carry settings into worker threads."""

from __future__ import annotations

import importlib
from typing import Any

from tgispy._public import publish as _publish
from tgispy._settings import copy_context_runner

__all__ = ["DummyLM", "copy_context_runner", "dummies"]


def __getattr__(name: str) -> Any:
    # `dspy.utils.dummies.DummyLM` works as an attribute chain without importing at startup.
    if name == "dummies":
        return importlib.import_module("tgispy.utils.dummies")
    if name == "DummyLM":
        return importlib.import_module("tgispy.utils.dummies").DummyLM
    raise AttributeError(f"module 'tgispy.utils' has no attribute {name!r}")


_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
