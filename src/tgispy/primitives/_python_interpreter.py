"""DSPy 2.4's ``PythonInterpreter``, ``CodePrompt`` and ``TextPrompt``, run in a sandbox.

The interpreter evaluates the Python subset DSPy 2.4.17's interpreter did, with the same results
and error messages, but in a separate process with a timeout, a memory cap, no network and no
files beyond a scratch directory (:mod:`tgispy.primitives._sandbox`; docs/security.md).

Differences from DSPy 2.4, all because the code runs in another process: ``action_space`` may
hold builtins (``print``) and JSON values, not arbitrary Python objects; the state kept between
``execute`` calls is its JSON-able part; printed output is collected (:attr:`last_stdout`), not
written to the terminal; a result that is not plain JSON comes back as its ``str``.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Mapping
from typing import Any

from tgispy.errors import ConfigError
from tgispy.primitives._ast_eval import InterpreterError
from tgispy.primitives._sandbox import SandboxLimits, run_in_sandbox

__all__ = ["CodePrompt", "InterpreterError", "PythonInterpreter", "SandboxLimits", "TextPrompt"]


def _split_action_space(action_space: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    names: list[str] = []
    values: dict[str, Any] = {}
    for name, value in action_space.items():
        if getattr(builtins, name, None) is value:
            names.append(name)
            continue
        try:
            if json.loads(json.dumps(value)) == value:
                values[name] = value
                continue
        except (TypeError, ValueError):
            pass
        raise ConfigError(
            f"action_space[{name!r}] is a {type(value).__name__}: the sandboxed interpreter runs "
            "in another process and takes builtins (e.g. print) and JSON values only"
        )
    return names, values


class PythonInterpreter:
    """Evaluate model-written Python (DSPy 2.4's subset) in a sandboxed process.

    Args:
        action_space: names the code can use: builtins by name (``{"print": print}``) and JSON
            values.
        import_white_list: modules the code may import (e.g. ``["math"]``).
        limits: timeout, memory cap and output limits (:class:`SandboxLimits`).

    Example:
        >>> PythonInterpreter({"print": print}).execute("x = 6\\ny = x * 7\\ny")
        42
    """

    def __init__(
        self,
        action_space: Mapping[str, Any],
        import_white_list: list[str] | None = None,
        *,
        limits: SandboxLimits | None = None,
    ) -> None:
        self.action_space = dict(action_space)
        self._builtins, self._values = _split_action_space(self.action_space)
        self.import_white_list = list(import_white_list or [])
        self.limits = limits or SandboxLimits()
        self.state: dict[str, Any] = dict(self._values)
        self.fuzz_state: dict[str, Any] = {}
        self.last_stdout = ""

    def execute(
        self,
        code: str,
        state: Mapping[str, Any] | None = None,
        fuzz_state: Mapping[str, Any] | None = None,
        keep_state: bool = True,
    ) -> Any:
        """The value of the code's last statement (a ``str`` when it is not plain JSON).

        Raises:
            InterpreterError: the code failed, used something unsupported or forbidden, or hit
                a sandbox limit (``kind`` names the cause, e.g. ``"TimeoutError"``).
        """
        if state is not None:
            _, values = _split_action_space(state)
            self.state.update(values)
        if fuzz_state is not None:
            _, values = _split_action_space(fuzz_state)
            self.fuzz_state.update(values)
        try:
            result = run_in_sandbox(
                str(code),
                state={**self.fuzz_state, **self.state},
                builtins_in_state=self._builtins,
                import_white_list=self.import_white_list,
                limits=self.limits,
            )
        except InterpreterError:
            if not keep_state:
                self.clear_state()
            raise
        self.last_stdout = result.stdout
        if keep_state:
            self.state.update(result.state)
        else:
            self.clear_state()
        return result.value if result.is_json else result.text

    def clear_state(self) -> None:
        """Forget the variables of earlier runs."""
        self.state = dict(self._values)
        self.fuzz_state = {}


class TextPrompt(str):
    """A string whose ``{placeholders}`` are its :attr:`key_words` (DSPy 2.4).

    Example:
        >>> TextPrompt("Hi {name}, {greeting}").format(name="Ann")
        'Hi Ann, {greeting}'
    """

    __slots__ = ()

    @property
    def key_words(self) -> set[str]:
        return set(re.findall(r"\{([^{}]+)\}", self))

    def format(self, *args: Any, **kwargs: Any) -> TextPrompt:
        """Fill the given placeholders, keep the others."""
        defaults = {key: "{" + key + "}" for key in self.key_words}
        defaults.update(kwargs)
        return TextPrompt(super().format(*args, **defaults))


class CodePrompt(TextPrompt):
    """Code with a :attr:`code_type`, runnable with :meth:`execute` (DSPy 2.4).

    Example:
        >>> CodePrompt("1 + 1", code_type="python").execute()[0]
        2
    """

    __slots__ = ("_code_type",)

    def __new__(cls, *args: Any, **kwargs: Any) -> CodePrompt:
        code_type = kwargs.pop("code_type", None)
        instance = super().__new__(cls, *args, **kwargs)
        instance._code_type = code_type
        return instance

    @property
    def code_type(self) -> str | None:
        return self._code_type

    def set_code_type(self, code_type: str) -> None:
        self._code_type = code_type

    def execute(
        self,
        interpreter: PythonInterpreter | None = None,
        user_variable: Mapping[str, Any] | None = None,
    ) -> tuple[Any, PythonInterpreter]:
        """Run the code; return its result and the interpreter used."""
        interpreter = interpreter or PythonInterpreter(action_space={"print": print})
        return interpreter.execute(self, fuzz_state=user_variable, keep_state=True), interpreter
