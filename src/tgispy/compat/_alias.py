"""Map the ``dspy`` and ``dsp`` module names to tgispy for one process (opt-in).

A meta path finder answers every ``dspy`` / ``dspy.<x>`` import with the tgispy module of the same
path (``dspy.teleprompt`` -> ``tgispy.teleprompt``) and ``dsp`` / ``dsp.<x>`` with
``tgispy.dsp[.<x>]``: the same module objects, never a second copy, so ``dspy.Predict is
tgispy.Predict``. Nothing is installed by importing tgispy; :func:`install` refuses when a real
``dspy`` (or ``dsp``) is already imported, since the two would then be mixed in one program.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from tgispy.errors import ConfigError

__all__ = ["ALIASES", "install", "installed", "uninstall"]

#: alias prefix -> tgispy module it stands for
ALIASES = {"dspy": "tgispy", "dsp": "tgispy.dsp"}
_lock = threading.Lock()


def _target(fullname: str) -> str | None:
    for alias, target in ALIASES.items():
        if fullname == alias or fullname.startswith(alias + "."):
            return target + fullname[len(alias) :]
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the tgispy module is already executed


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        real = _target(fullname)
        if real is None:
            return None
        if importlib.util.find_spec(real) is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: tgispy (standing in for DSPy 2.4 through "
                f"tgispy.compat) has no {real!r}",
                name=fullname,
            )
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real))


_finder = _AliasFinder()


def installed() -> bool:
    """Whether the ``dspy`` / ``dsp`` aliases are active in this process."""
    return _finder in sys.meta_path


def _foreign(name: str) -> Any:
    module = sys.modules.get(name)
    if module is None:
        return None
    own = importlib.import_module(ALIASES[name])
    return None if module is own else module


def install() -> None:
    """Make ``import dspy`` / ``import dsp`` (and their submodules) load tgispy, in this process.

    For notebooks and scripts that say ``import dspy``: call it before that import. Calling it
    again is harmless.

    Raises:
        ConfigError: a real ``dspy`` or ``dsp`` is already imported; mapping the name now would
            mix two libraries in one program. Restart the process and call ``install()`` first.

    Example:
        >>> import tgispy.compat
        >>> tgispy.compat.install()
        >>> import dspy
        >>> dspy.Predict is tgispy.Predict
        True
        >>> tgispy.compat.uninstall()
    """
    with _lock:
        for name in ALIASES:
            foreign = _foreign(name)
            if foreign is not None:
                where = getattr(foreign, "__file__", None) or repr(foreign)
                raise ConfigError(
                    f"a real {name!r} is already imported in this process ({where}); "
                    f"tgispy.compat.install() would shadow it and mix the two libraries. Call "
                    "install() before anything imports dspy (or run the script with "
                    "`python -m tgispy.compat script.py`), or keep using the real dspy."
                )
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Remove the aliases (the ``dspy`` / ``dsp`` entries of ``sys.modules`` included)."""
    with _lock:
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        for name in list(sys.modules):
            if _target(name) is not None and getattr(sys.modules[name], "__name__", "").startswith(
                "tgispy"
            ):
                del sys.modules[name]
