"""DSPy 2.4's ``dspy.primitives.assertions`` path: ``Assert``, ``Suggest`` and the handlers."""

from tgispy.primitives._assertions import (
    Assert,
    BacktrackState,
    Constraint,
    DSPyAssertionError,
    DSPySuggestionError,
    Suggest,
    assert_no_except_handler,
    assert_transform_module,
    backtrack_handler,
    backtrack_state,
    bypass_assert_handler,
    bypass_suggest_handler,
    default_assertion_handler,
    handle_assert_forward,
    noop_handler,
)

__all__ = [
    "Assert",
    "BacktrackState",
    "Constraint",
    "DSPyAssertionError",
    "DSPySuggestionError",
    "Suggest",
    "assert_no_except_handler",
    "assert_transform_module",
    "backtrack_handler",
    "backtrack_state",
    "bypass_assert_handler",
    "bypass_suggest_handler",
    "default_assertion_handler",
    "handle_assert_forward",
    "noop_handler",
]
