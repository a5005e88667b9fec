"""``Module``: the base class of LM programs (DSPy 2.4's ``dspy.Module``).

A module finds its learnable parameters (the ``Predict`` instances it holds, directly or in
sub-modules, lists and dicts), copies itself, and saves / loads their state as JSON.

Modules have a sync face (``module(**inputs)`` -> :meth:`Module.forward`) and an async one
(``await module.acall(**inputs)`` -> :meth:`Module.aforward`). Write either; the other one is
derived: a sync ``forward`` runs in a worker thread when awaited, an async ``aforward`` is driven
to completion by tgispy's sync face (:func:`tgispy._sync.run_sync`) when called synchronously.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tgispy._sync import run_sync
from tgispy.errors import ConfigError

__all__ = ["BaseModule", "Module", "Parameter", "Program", "ProgramMeta", "set_attribute_by_name"]


class Parameter:
    """Marker base class of learnable parameters (``Predict``)."""

    def reset(self) -> None:
        raise NotImplementedError

    def dump_state(self, save_verbose: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


def _postprocess_parameter_name(name: str) -> str:
    # DSPy 2.4: ChainOfThought keeps its predictor in `_predict` but names it after itself.
    if name.endswith("._predict"):
        name = name[: -len("._predict")]
    if name.endswith(".self"):
        name = name[: -len(".self")]
    if name == "_predict":
        return "self"
    return name


class BaseModule:
    """Parameter discovery, copying and state (the part of ``Module`` without calling)."""

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs, e.g. ``[("generate_answer", <Predict>)]``.

        Unlike PyTorch, handles (non-recursive) lists and dicts of parameters too. Sub-modules
        whose ``_compiled`` flag is set are frozen and skipped.
        """
        visited: set[int] = set()
        named: list[tuple[str, Parameter]] = []

        def add(name: str, value: Any) -> None:
            if isinstance(value, Parameter):
                if id(value) not in visited:
                    visited.add(id(value))
                    named.append((_postprocess_parameter_name(name), value))
            elif isinstance(value, BaseModule) and not getattr(value, "_compiled", False):
                for sub_name, param in value.named_parameters():
                    add(f"{name}.{sub_name}", param)

        if isinstance(self, Parameter):
            add("self", self)
        for name, value in self.__dict__.items():
            if isinstance(value, Parameter | BaseModule):
                add(name, value)
            elif isinstance(value, list | tuple):
                for idx, item in enumerate(value):
                    add(f"{name}[{idx}]", item)
            elif isinstance(value, dict):
                for key, item in value.items():
                    add(f"{name}['{key}']", item)
        return named

    def named_sub_modules(
        self, type_: type | None = None, skip_compiled: bool = False
    ) -> Iterator[tuple[str, Any]]:
        """Every sub-module (breadth first) with its name; each reachable object once."""
        wanted = BaseModule if type_ is None else type_
        queue: deque[tuple[str, Any]] = deque([("self", self)])
        seen = {id(self)}

        def enqueue(name: str, item: Any) -> None:
            name = _postprocess_parameter_name(name)
            if id(item) not in seen:
                seen.add(id(item))
                queue.append((name, item))

        while queue:
            name, item = queue.popleft()
            if isinstance(item, wanted):
                yield name, item
            if isinstance(item, BaseModule):
                if skip_compiled and getattr(item, "_compiled", False):
                    continue
                for sub_name, sub_item in item.__dict__.items():
                    enqueue(f"{name}.{sub_name}", sub_item)
            elif isinstance(item, list | tuple):
                for i, sub_item in enumerate(item):
                    enqueue(f"{name}[{i}]", sub_item)
            elif isinstance(item, dict):
                for key, sub_item in item.items():
                    enqueue(f"{name}[{key}]", sub_item)

    def parameters(self) -> list[Parameter]:
        return [param for _, param in self.named_parameters()]

    def deepcopy(self) -> Any:
        """A deep copy (language models are shared, not copied)."""
        try:
            return copy.deepcopy(self)
        except Exception:
            pass  # fall back attribute by attribute, as DSPy 2.4 did
        new = self.__class__.__new__(self.__class__)
        for attr, value in self.__dict__.items():
            if isinstance(value, BaseModule):
                new.__dict__[attr] = value.deepcopy()
                continue
            try:
                new.__dict__[attr] = copy.deepcopy(value)
            except Exception:
                new.__dict__[attr] = value
        return new

    def reset_copy(self) -> Any:
        """A deep copy with every parameter reset (no demos)."""
        new = self.deepcopy()
        for param in new.parameters():
            param.reset()
        return new

    def dump_state(self, save_verbose: bool = False) -> dict[str, Any]:
        """``{parameter name: parameter state}``, JSON-ready (DSPy 2.4's layout)."""
        return {name: param.dump_state(save_verbose) for name, param in self.named_parameters()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`dump_state` produced (also reads files saved by DSPy 2.4)."""
        if not isinstance(state, dict):
            raise ConfigError(f"module state must be a dict, got {type(state).__name__}")
        named = self.named_parameters()
        missing = [name for name, _ in named if name not in state]
        if missing:
            raise ConfigError(
                f"the saved state has no entry for {missing}; it has {sorted(state)}. Load it "
                "into the same program it was saved from"
            )
        for name, param in named:
            param.load_state(state[name])

    def save(self, path: str | Path, save_field_meta: bool = False) -> None:
        """Write :meth:`dump_state` to ``path`` as JSON."""
        text = json.dumps(self.dump_state(save_field_meta), indent=2, ensure_ascii=False)
        Path(path).write_text(text, encoding="utf-8")

    def load(self, path: str | Path) -> None:
        """Read a JSON file written by :meth:`save` (or by DSPy 2.4) into this module."""
        self.load_state(json.loads(Path(path).read_text(encoding="utf-8")))


class ProgramMeta(type):
    """The metaclass of :class:`Module` (DSPy 2.4's ``dspy.primitives.program.ProgramMeta``)."""


class Module(BaseModule, metaclass=ProgramMeta):
    """Base class of LM programs.

    Subclasses create predictors in ``__init__`` and call them in ``forward`` (sync) or
    ``aforward`` (async).

    Example:
        >>> import tgispy as dspy
        >>> class QA(dspy.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.generate_answer = dspy.ChainOfThought("question -> answer")
        ...     def forward(self, question):
        ...         return self.generate_answer(question=question)
        >>> [name for name, _ in QA().named_predictors()]
        ['generate_answer']
    """

    def __init__(self) -> None:
        self._compiled = False

    def _base_init(self) -> None:
        self._compiled = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """Async twin of ``__call__``."""
        return await self.aforward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The program. Defaults to running :meth:`aforward` when only that is defined."""
        if type(self).aforward is Module.aforward:
            raise NotImplementedError(f"{type(self).__name__} defines neither forward nor aforward")
        return run_sync(self.aforward(*args, **kwargs))

    async def aforward(self, *args: Any, **kwargs: Any) -> Any:
        """The async program. Defaults to running :meth:`forward` in a worker thread."""
        if type(self).forward is Module.forward:
            raise NotImplementedError(f"{type(self).__name__} defines neither forward nor aforward")
        # to_thread carries the caller's context (settings) into the worker.
        return await asyncio.to_thread(self.forward, *args, **kwargs)

    def named_predictors(self) -> list[tuple[str, Any]]:
        """``(name, Predict)`` pairs of this program."""
        from tgispy.predict._predict import Predict

        return [(name, p) for name, p in self.named_parameters() if isinstance(p, Predict)]

    def predictors(self) -> list[Any]:
        return [param for _, param in self.named_predictors()]

    def set_lm(self, lm: Any) -> None:
        """Make every predictor use ``lm`` instead of the configured one."""
        for _, param in self.named_predictors():
            param.lm = lm

    def get_lm(self) -> Any:
        """The LM every predictor uses (``None`` = the configured one)."""
        lms = {id(p.lm): p.lm for _, p in self.named_predictors()}
        if len(lms) == 1:
            return next(iter(lms.values()))
        raise ValueError("Multiple LMs are being used in the module.")

    def activate_assertions(self, handler: Any = None, **handler_args: Any) -> Module:
        """Handle ``Assert`` / ``Suggest`` failures (default: backtracking with feedback).

        Args:
            handler: an assertion handler (default
                :func:`~tgispy.primitives.assertions.backtrack_handler`).
            **handler_args: passed to the handler, e.g. ``max_backtracks=3``.
        """
        from tgispy.primitives._assertions import assert_transform_module, backtrack_handler

        assert_transform_module(self, handler or backtrack_handler, **handler_args)
        return self

    def map_named_predictors(self, func: Callable[[Any], Any]) -> Module:
        """Replace every predictor ``p`` by ``func(p)``."""
        for name, predictor in self.named_predictors():
            _set_attribute_by_name(self, name, func(predictor))
        return self

    def __repr__(self) -> str:
        return "\n".join(f"{name} = {param}" for name, param in self.named_predictors())


Program = Module

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_]\w*)|\[(\d+)\]|\['([^']*)'\]")


def set_attribute_by_name(obj: Any, name: str, value: Any) -> None:
    """Set the attribute a parameter name points at (``"qa.predictors[0]"``, ``"d['k']"``).

    Example:
        >>> class Box:
        ...     items = [1, 2]
        >>> box = Box()
        >>> set_attribute_by_name(box, "items[1]", 5)
        >>> box.items
        [1, 5]
    """
    _set_attribute_by_name(obj, name, value)


def _set_attribute_by_name(obj: Any, name: str, value: Any) -> None:
    if name == "self":
        raise ConfigError("map_named_predictors cannot replace a module that is itself a predictor")
    steps: list[str | int] = []
    pos = 0
    while pos < len(name):
        match = _PATH_TOKEN.match(name, pos)
        if match is None:
            raise ConfigError(f"cannot resolve parameter name {name!r}")
        attr, index, key = match.groups()
        steps.append(attr if attr is not None else int(index) if index is not None else key)
        pos = match.end()
    target = obj
    for step in steps[:-1]:
        target = _step(target, step, name)
    last = steps[-1]
    if isinstance(target, dict | list):
        target[last] = value  # type: ignore[index]
    elif isinstance(last, str) and last != "self" and hasattr(target, last):
        setattr(target, last, value)
    else:
        raise ConfigError(f"cannot set parameter {name!r}")


def _step(target: Any, step: str | int, name: str) -> Any:
    if isinstance(target, dict | list | tuple):
        return target[step]  # type: ignore[index]
    if isinstance(step, str):
        return getattr(target, step)
    raise ConfigError(f"cannot resolve parameter name {name!r}")
