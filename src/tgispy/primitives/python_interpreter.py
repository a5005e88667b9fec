"""DSPy 2.4's ``dspy.primitives.python_interpreter`` path (sandboxed; see docs/security.md)."""

from tgispy.primitives._python_interpreter import (
    CodePrompt,
    InterpreterError,
    PythonInterpreter,
    SandboxLimits,
    TextPrompt,
)

__all__ = ["CodePrompt", "InterpreterError", "PythonInterpreter", "SandboxLimits", "TextPrompt"]
