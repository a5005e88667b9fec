"""Primitives: ``Example``, ``Prediction``, ``Completions`` and the ``Module`` base class."""

from tgispy._public import publish as _publish
from tgispy.primitives._assertions import (
    Assert,
    Constraint,
    DSPyAssertionError,
    DSPySuggestionError,
    Suggest,
    assert_no_except_handler,
    assert_transform_module,
    backtrack_handler,
    bypass_assert_handler,
    bypass_suggest_handler,
    default_assertion_handler,
    handle_assert_forward,
    noop_handler,
)
from tgispy.primitives._example import Example
from tgispy.primitives._module import (
    BaseModule,
    Module,
    Parameter,
    Program,
    ProgramMeta,
    set_attribute_by_name,
)
from tgispy.primitives._prediction import Completions, Prediction

__all__ = [
    "Assert",
    "BaseModule",
    "Completions",
    "Constraint",
    "DSPyAssertionError",
    "DSPySuggestionError",
    "Example",
    "Module",
    "Parameter",
    "Prediction",
    "Program",
    "ProgramMeta",
    "Suggest",
    "assert_no_except_handler",
    "assert_transform_module",
    "backtrack_handler",
    "bypass_assert_handler",
    "bypass_suggest_handler",
    "default_assertion_handler",
    "handle_assert_forward",
    "noop_handler",
    "set_attribute_by_name",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)


# DSPy 2.4's module paths (``dspy.primitives.<name>``), loaded on first attribute access.
_PATH_MODULES = frozenset({"assertions", "example", "module", "prediction", "program"})


def __getattr__(name: str) -> object:
    if name in _PATH_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
