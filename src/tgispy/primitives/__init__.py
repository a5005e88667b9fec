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
    "CodePrompt",
    "Completions",
    "Constraint",
    "DSPyAssertionError",
    "DSPySuggestionError",
    "Example",
    "InterpreterError",
    "Module",
    "Parameter",
    "Prediction",
    "Program",
    "ProgramMeta",
    "PythonInterpreter",
    "Suggest",
    "TextPrompt",
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
_PATH_MODULES = frozenset(
    {"assertions", "example", "module", "prediction", "program", "python_interpreter"}
)
# The sandboxed interpreter (subprocess, resource) loads only when used.
_INTERPRETER = frozenset({"CodePrompt", "InterpreterError", "PythonInterpreter", "TextPrompt"})


def __getattr__(name: str) -> object:
    import importlib

    if name in _PATH_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _INTERPRETER:
        value = getattr(importlib.import_module(f"{__name__}._python_interpreter"), name)
        _publish(__name__, {name: value}, [name])
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
