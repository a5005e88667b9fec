"""Which public classes and functions lack a runnable docstring example.

STYLE.md asks for a Google-style docstring with a short example on every public name. An example
counts when it has at least one ``>>>`` line without ``# doctest: +SKIP``. Run
``python -m tests.docs._examples`` for the list; ``tests/docs/test_reference.py`` checks the
counting itself (the count is a report, not a gate: the names belong to many modules).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import tgispy

_PROMPT = re.compile(r"^\s*>>> (?P<code>.*)$", re.MULTILINE)


#: public plain modules whose ``__all__`` users import from
PLAIN_MODULES = ("tgispy.errors", "tgispy.testing", "tgispy.cli")


def public_modules() -> list[str]:
    """tgispy's public packages (found by walking it) and public plain modules."""
    packages = [
        info.name
        for info in pkgutil.walk_packages(tgispy.__path__, "tgispy.", onerror=lambda name: None)
        if info.ispkg and not any(part.startswith("_") for part in info.name.split("."))
    ]
    return ["tgispy", *packages, *PLAIN_MODULES]


def has_runnable_example(obj: object) -> bool:
    """Whether ``obj``'s own docstring has a ``>>>`` line that doctest would run."""
    doc = inspect.getdoc(obj) if inspect.isclass(obj) or callable(obj) else None
    if not doc or (inspect.isclass(obj) and obj.__doc__ is None):
        return False
    return any("doctest: +SKIP" not in m["code"] for m in _PROMPT.finditer(doc))


def public_names() -> dict[str, object]:
    """``module.name`` -> object, for each class or function in a public ``__all__`` (once)."""
    found: dict[str, object] = {}
    seen: set[int] = set()
    for module_name in public_modules():
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an optional extra is not installed
            continue
        for name in getattr(module, "__all__", []):
            try:
                value = getattr(module, name)
            except ImportError:  # an optional extra is not installed
                continue
            if (inspect.isclass(value) or inspect.isfunction(value)) and id(value) not in seen:
                seen.add(id(value))
                found[f"{module_name}.{name}"] = value
    return found


def names_without_examples() -> list[str]:
    return sorted(name for name, obj in public_names().items() if not has_runnable_example(obj))


if __name__ == "__main__":
    missing = names_without_examples()
    total = len(public_names())
    print(f"{len(missing)} of {total} public classes and functions lack a runnable example:")
    for name in missing:
        print(f"  {name}")
