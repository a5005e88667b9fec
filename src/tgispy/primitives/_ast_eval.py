"""The Python subset DSPy 2.4's ``PythonInterpreter`` evaluates, walked over the AST.

Same statements, same results ("the value of the last statement"), same error messages as DSPy
2.4.17's interpreter (itself adapted from CAMEL-AI, Apache-2.0), so ``ProgramOfThought`` shows
the model the same errors. This is **not** the security boundary: the evaluator runs inside the
sandboxed child process of :mod:`tgispy.primitives._sandbox`, which is.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Evaluator", "InterpreterError"]


class InterpreterError(ValueError):
    """The code could not be evaluated (syntax, an unsupported construct, a runtime error, a
    sandbox limit). ``kind`` names the original exception type (``"ZeroDivisionError"``)."""

    def __init__(self, message: str, kind: str = "InterpreterError") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.kind))


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.MatMult: lambda a, b: a @ b,
}
_AUGOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BUILTIN_NAMES = frozenset(dir(builtins))


class Evaluator:
    """Evaluate code in the supported subset against a state dict.

    Example:
        >>> Evaluator({}).execute("x = 2\\ny = x * 21\\ny")
        42
    """

    def __init__(
        self,
        state: Mapping[str, Any],
        import_white_list: list[str] | None = None,
        fuzz_state: Mapping[str, Any] | None = None,
    ) -> None:
        self.state: dict[str, Any] = dict(state)
        self.fuzz_state: dict[str, Any] = dict(fuzz_state or {})
        self.import_white_list = list(import_white_list or [])

    def execute(self, code: str) -> Any:
        """The value of the last statement that has one (imports and defs have none)."""
        try:
            module = ast.parse(code)
        except SyntaxError as exc:
            line = code.splitlines()[(exc.lineno or 1) - 1] if code.splitlines() else ""
            raise InterpreterError(
                f"Syntax error in code at line {exc.lineno}: {line}\nError: {exc}"
            ) from None
        result = None
        for index, node in enumerate(module.body):
            try:
                value = self._eval(node)
            except InterpreterError as exc:
                raise InterpreterError(
                    f"Evaluation of the code stopped at node {index}. See:\n{exc}"
                ) from None
            if value is not None:
                result = value
        return result

    # ---- nodes ------------------------------------------------------------------------------
    def _eval(self, node: ast.AST | None) -> Any:
        if isinstance(node, ast.Assign):
            value = self._eval(node.value)
            for target in node.targets:
                self._assign(target, value)
            return value
        if isinstance(node, ast.Attribute):
            return getattr(self._eval(node.value), node.attr)
        if isinstance(node, ast.AugAssign):
            return self._augassign(node)
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left), self._eval(node.right)
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise InterpreterError(f"Operator not supported: {node.op}")
            return op(left, right)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Compare):
            return self._condition(node)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for key, item in zip(node.keys, node.values, strict=True):
                if key is None:
                    out.update(self._eval(item))
                else:
                    out[self._eval(key)] = self._eval(item)
            return out
        if isinstance(node, ast.Expr | ast.FormattedValue):
            return self._eval(node.value)
        if isinstance(node, ast.For):
            return self._for(node)
        if isinstance(node, ast.FunctionDef):
            self.state[node.name] = node
            return None
        if isinstance(node, ast.If):
            return self._if(node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._validate_import(alias.name)
                self.state[alias.asname or alias.name] = importlib.import_module(alias.name)
            return None
        if isinstance(node, ast.ImportFrom):
            return self._import_from(node)
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self._eval(v)) for v in node.values)
        if isinstance(node, ast.List):
            return [self._eval(e) for e in node.elts]
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Return):
            return self._eval(node.value)  # a bare `return`: "NoneType is not supported."
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Tuple):
            return tuple(self._eval(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp):
            return self._unaryop(node)
        raise InterpreterError(f"{node.__class__.__name__} is not supported.")

    def _assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.state[target.id] = value
        elif isinstance(target, ast.Tuple):
            if not isinstance(value, tuple):
                raise InterpreterError(
                    f"Expected type tuple, but got{value.__class__.__name__} instead."
                )
            if len(target.elts) != len(value):
                raise InterpreterError(f"Expected {len(target.elts)} values but got {len(value)}.")
            for element, item in zip(target.elts, value, strict=True):
                self.state[self._eval(element)] = item
        else:
            raise InterpreterError(
                "Unsupported variable type. Expected ast.Name or ast.Tuple, got "
                f"{target.__class__.__name__} instead."
            )

    def _call(self, call: ast.Call) -> Any:
        func = self._eval(call.func)
        args = [self._eval(arg) for arg in call.args]
        kwargs: dict[Any, Any] = {kw.arg: self._eval(kw.value) for kw in call.keywords}
        if not isinstance(func, ast.FunctionDef):
            return func(*args, **kwargs)
        saved = self.state.copy()
        for name, value in zip((p.arg for p in func.args.args), args, strict=False):
            self.state[name] = value
        result = None
        for statement in func.body:
            result = self._eval(statement)
            if isinstance(statement, ast.Return):
                break
        self.state = saved
        return result

    def _augassign(self, node: ast.AugAssign) -> Any:
        target = node.target
        current = self.state[target.id] if isinstance(target, ast.Name) else None
        increment = self._eval(node.value)
        if not (isinstance(current, int | float) and isinstance(increment, int | float)):
            raise InterpreterError(
                f"Invalid types for augmented assignment: {type(current)}, {type(increment)}"
            )
        op = _AUGOPS.get(type(node.op))
        if op is None:
            raise InterpreterError(f"Augmented assignment operator {node.op} is not supported")
        value = op(current, increment)
        self._assign(target, value)
        return value

    def _subscript(self, node: ast.Subscript) -> Any:
        index = self._eval(node.slice)
        value = self._eval(node.value)
        if not isinstance(node.ctx, ast.Load):
            raise InterpreterError(f"{node.ctx.__class__.__name__} is not supported for subscript.")
        if isinstance(value, list | tuple):
            return value[int(index)]
        if index in value:
            return value[index]
        if isinstance(index, str) and isinstance(value, Mapping):
            close = difflib.get_close_matches(index, list(value.keys()))
            if close:
                return value[close[0]]
        raise InterpreterError(f"Could not index {value} with '{index}'.")

    def _name(self, node: ast.Name) -> Any:
        if node.id in _BUILTIN_NAMES:
            return getattr(builtins, node.id)
        if isinstance(node.ctx, ast.Store):
            return node.id
        if isinstance(node.ctx, ast.Load):
            if node.id in self.state:
                return self.state[node.id]
            if node.id in self.fuzz_state:
                return self.fuzz_state[node.id]
            raise InterpreterError(f"The variable `{node.id}` is not defined.")
        raise InterpreterError(f"{node.ctx} is not supported.")

    def _condition(self, node: Any) -> Any:
        if isinstance(node, ast.BoolOp):
            values = [self._eval(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return all(values)
            return any(values)
        if len(node.ops) > 1:
            raise InterpreterError("Cannot evaluate conditions with multiple operators")
        left = self._eval(node.left)
        right = self._eval(node.comparators[0])
        op = _COMPARE.get(type(node.ops[0]))
        if op is None:
            raise InterpreterError("Unsupported condition type")
        return op(left, right)

    def _block(self, statements: list[ast.stmt]) -> Any:
        result = None
        for statement in statements:
            value = self._eval(statement)
            if value is not None:
                result = value
        return result

    def _if(self, node: ast.If) -> Any:
        return self._block(node.body if self._condition(node.test) else node.orelse)

    def _for(self, node: ast.For) -> Any:
        result = None
        for value in self._eval(node.iter):
            self._assign(node.target, value)
            block = self._block(node.body)
            if block is not None:
                result = block
        return result

    def _import_from(self, node: ast.ImportFrom) -> None:
        if node.module is None:
            raise InterpreterError('"from . import" is not supported.')
        for alias in node.names:
            self._validate_import(f"{node.module}.{alias.name}")
            module = importlib.import_module(node.module)
            self.state[alias.asname or alias.name] = getattr(module, alias.name)

    def _validate_import(self, full_name: str) -> None:
        prefix = ""
        for part in full_name.split("."):
            prefix = part if not prefix else f"{prefix}.{part}"
            if prefix in self.import_white_list:
                return
        raise InterpreterError(
            "It is not permitted to import modules than module white list (try to import "
            f"{full_name})."
        )

    def _unaryop(self, node: ast.UnaryOp) -> Any:
        operand = self._eval(node.operand)
        if isinstance(node.op, ast.UAdd):
            return +operand
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.Not):
            return not operand
        raise InterpreterError(f"Operator not supported: {node.op}")
