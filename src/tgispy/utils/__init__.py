"""Utilities: :mod:`tgispy.utils.dummies` (``DummyLM``) for tests."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DummyLM", "dummies"]


def __getattr__(name: str) -> Any:
    # `dspy.utils.dummies.DummyLM` works as an attribute chain without importing at startup.
    if name == "dummies":
        return importlib.import_module("tgispy.utils.dummies")
    if name == "DummyLM":
        return importlib.import_module("tgispy.utils.dummies").DummyLM
    raise AttributeError(f"module 'tgispy.utils' has no attribute {name!r}")
