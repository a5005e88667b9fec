"""Optional imports of the ``tgispy[datasets]`` extra (``datasets``, ``pandas``, ``pyarrow``)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__all__ = ["INSTALL_HINT", "require"]

INSTALL_HINT = "pip install 'tgispy[datasets]'"


def require(module: str, purpose: str) -> Any:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs the {module!r} package: {INSTALL_HINT}") from exc


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None
