"""DSPy 2.4's assertions: ``Assert``, ``Suggest`` and the handlers that backtrack on failures.

``dspy.Assert(ok, msg)`` / ``dspy.Suggest(ok, msg)`` raise at once when ``ok`` is false. A module
transformed by :func:`assert_transform_module` (or ``module.activate_assertions()``) runs its
``forward`` through a handler; the default, :func:`backtrack_handler`, re-runs the program with
the failing predictor's signature extended by its past outputs and the feedback messages (see
:class:`~tgispy.predict.Retry`), exactly as DSPy 2.4.17 did, byte for byte in the prompt.

Unlike DSPy 2.4, the backtracking state is kept per call (a :class:`~contextvars.ContextVar`),
not in global settings behind a process-wide lock: assertion-handled programs run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tgispy._settings import configure, context
from tgispy._settings import current as current_settings
from tgispy.errors import ConfigError, TgispyError

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

logger = logging.getLogger(__name__)

Handler = Callable[..., Callable[..., Any]]


class _ConstraintError(TgispyError, AssertionError):
    def __init__(
        self,
        id: str,
        msg: str,
        target_module: Any = None,
        state: Any = None,
        is_metric: bool = False,
    ) -> None:
        super().__init__(msg)
        self.id = id
        self.msg = msg
        self.target_module = target_module
        self.state = state
        self.is_metric = is_metric

    def __reduce__(self) -> tuple[Any, ...]:
        # The trace (state) holds modules and predictions; it does not cross processes.
        return (type(self), (self.id, self.msg, None, None, self.is_metric))


class DSPyAssertionError(_ConstraintError):
    """An ``Assert`` failed (an ``AssertionError``, as in DSPy 2.4).

    Attributes:
        id: the constraint's id.
        msg: its message.
        target_module: the predictor to backtrack to (``None`` = the last one called).
        state: the trace when it failed.
        is_metric: counted as a metric failure.
    """


class DSPySuggestionError(_ConstraintError):
    """A ``Suggest`` failed (an ``AssertionError``, as in DSPy 2.4); attributes as
    :class:`DSPyAssertionError`."""


class Constraint:
    """A checked condition; checking happens on construction (DSPy 2.4's behaviour).

    Args:
        result: the condition, a ``bool``.
        msg: the feedback given to the LM when backtracking.
        target_module: the predictor to backtrack to (default: the last one called).
        is_metric: count failures as metric failures.
    """

    def __init__(
        self,
        result: bool,
        msg: str = "",
        target_module: Any = None,
        is_metric: bool = False,
    ) -> None:
        self.id = str(uuid.uuid4())
        self.result = result
        self.msg = msg
        self.target_module = target_module
        self.is_metric = is_metric
        self.__call__()

    def __call__(self) -> Any:
        raise NotImplementedError


def _check(constraint: Constraint, kind: str) -> bool:
    if not isinstance(constraint.result, bool):
        noun = "Assertion" if kind == "assert" else "Suggestion"
        raise ConfigError(
            f"{noun} function should always return [bool], got "
            f"{type(constraint.result).__name__}; wrap the condition in bool(...)"
        )
    if constraint.result:
        return True
    settings = current_settings()
    if kind == "assert":
        logger.error("AssertionError: %s", constraint.msg)
        if settings.get("bypass_assert"):
            return True
        error: _ConstraintError = DSPyAssertionError(
            constraint.id,
            constraint.msg,
            constraint.target_module,
            settings.trace,
            constraint.is_metric,
        )
    else:
        logger.info("SuggestionFailed: %s", constraint.msg)
        if settings.get("bypass_suggest"):
            return True
        error = DSPySuggestionError(
            constraint.id,
            constraint.msg,
            constraint.target_module,
            settings.trace,
            constraint.is_metric,
        )
    raise error


class Assert(Constraint):
    """Require ``result``; raise :class:`DSPyAssertionError` with ``msg`` when it is false.

    Inside an assertion-handled module the program is retried with ``msg`` as feedback; after
    the last try the error propagates.

    Example:
        >>> Assert(2 + 2 == 4, "arithmetic").result
        True
    """

    def __call__(self) -> bool:
        return _check(self, "assert")


class Suggest(Constraint):
    """Prefer ``result``; raise :class:`DSPySuggestionError` with ``msg`` when it is false.

    Inside an assertion-handled module the program is retried with ``msg`` as feedback; the
    last try ignores failed suggestions.

    Example:
        >>> Suggest(len("Paris".split()) == 1, "Answer in one word.").result
        True
    """

    def __call__(self) -> bool:
        return _check(self, "suggest")


# ---- backtracking state ------------------------------------------------------------------------


@dataclass
class BacktrackState:
    """The backtracking state of one handled call (DSPy 2.4 kept it in global settings).

    Attributes:
        backtrack_to: the predictor to re-run with feedback, or ``None``.
        backtrack_to_args: ``{"feedback": str, "past_outputs": dict}`` for that predictor.
        predictor_feedbacks: the distinct feedback messages per predictor.
        suggest_failures: metric suggestion failures so far. assert_failures: likewise.
    """

    backtrack_to: Any = None
    backtrack_to_args: dict[str, Any] = field(default_factory=dict)
    predictor_feedbacks: dict[Any, list[str]] = field(default_factory=dict)
    suggest_failures: int = 0
    assert_failures: int = 0


_STATE: ContextVar[BacktrackState | None] = ContextVar("tgispy_backtrack", default=None)


def backtrack_state() -> BacktrackState | None:
    """The backtracking state of the handled call running here, if any."""
    return _STATE.get()


# ---- handlers -------------------------------------------------------------------------------


def noop_handler(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with failed assertions and suggestions logged, never raised."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with context(bypass_assert=True, bypass_suggest=True):
            return func(*args, **kwargs)

    return wrapper


def bypass_suggest_handler(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with failed suggestions logged, failed assertions raised."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with context(bypass_suggest=True, bypass_assert=False):
            return func(*args, **kwargs)

    return wrapper


def bypass_assert_handler(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with failed assertions logged, not raised."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with context(bypass_assert=True):
            return func(*args, **kwargs)

    return wrapper


def assert_no_except_handler(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func``; a failed assertion makes it return ``None``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DSPyAssertionError:
            return None

    return wrapper


def _build_error_msg(feedback_msgs: list[str]) -> str:
    return "\n".join(feedback_msgs)


def backtrack_handler(
    func: Callable[..., Any],
    bypass_suggest: bool = True,
    max_backtracks: int = 2,
    *,
    max_backtracking_attempts: int | None = None,
) -> Callable[..., Any]:
    """Re-run ``func`` up to ``max_backtracks`` times when an assertion or suggestion fails.

    Each retry calls the failing predictor (the constraint's ``target_module``, else the last
    predictor called) with its signature extended by ``Previous <Field>:`` inputs holding its
    past outputs and an ``Instructions:`` input holding the feedback messages. A failed
    ``Assert`` is raised once the tries run out; on the last try failed suggestions are ignored
    (``bypass_suggest=True``) or the result is ``None``.

    Args:
        func: the module's original ``forward``.
        bypass_suggest: ignore failed suggestions on the last try.
        max_backtracks: how many times to backtrack (DSPy 2.4's name).
        max_backtracking_attempts: alias of ``max_backtracks``.
    """
    if max_backtracking_attempts is not None:
        max_backtracks = max_backtracking_attempts
    if not isinstance(max_backtracks, int) or max_backtracks < 0:
        raise ConfigError(f"max_backtracks must be an int >= 0, got {max_backtracks!r}")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        trace = current_settings().trace
        own_trace = trace is None
        if trace is None:
            trace = []
        state = BacktrackState()
        token = _STATE.set(state)
        try:
            with context(trace=trace) if own_trace else contextlib.nullcontext():
                result = _backtrack(
                    func,
                    args,
                    kwargs,
                    trace=trace,
                    state=state,
                    bypass_suggest=bypass_suggest,
                    max_backtracks=max_backtracks,
                )
        finally:
            _STATE.reset(token)
        configure(assert_failures=state.assert_failures, suggest_failures=state.suggest_failures)
        return result

    return wrapper


def _backtrack(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    trace: list[Any],
    state: BacktrackState,
    bypass_suggest: bool,
    max_backtracks: int,
) -> Any:
    current_error: _ConstraintError | None = None
    past_outputs: dict[str, Any] = {}
    for attempt in range(max_backtracks + 1):
        if attempt > 0 and state.backtrack_to is not None:
            state.backtrack_to_args = {
                "feedback": _build_error_msg(state.predictor_feedbacks[state.backtrack_to]),
                "past_outputs": past_outputs,
            }
        if attempt == max_backtracks:
            if isinstance(current_error, DSPyAssertionError):
                raise current_error
            trace.clear()
            return bypass_suggest_handler(func)(*args, **kwargs) if bypass_suggest else None
        try:
            trace.clear()
            return func(*args, **kwargs)
        except (DSPySuggestionError, DSPyAssertionError) as exc:
            if current_error is None:
                current_error = exc
            if exc.is_metric:
                if isinstance(exc, DSPySuggestionError):
                    state.suggest_failures += 1
                else:
                    state.assert_failures += 1
            if not trace:
                logger.error("assertion failed outside any traced predictor; nothing to retry")
                continue
            states = exc.state if isinstance(exc.state, list) and exc.state else trace
            past_outputs = _record_failure(exc, states, state)
    return None  # pragma: no cover - the last attempt always returns or raises


def _record_failure(
    exc: _ConstraintError, trace: list[Any], state: BacktrackState
) -> dict[str, Any]:
    """Pick the predictor to backtrack to, remember the feedback, return its past outputs."""
    failed = trace[-1]
    if exc.target_module is not None:
        for entry in reversed(trace):
            if entry[0] is exc.target_module:
                failed = entry
                state.backtrack_to = entry[0]
                break
    else:
        state.backtrack_to = trace[-1][0]
    if state.backtrack_to is None:
        logger.error("Specified module not found in trace")
    feedbacks = state.predictor_feedbacks.setdefault(state.backtrack_to, [])
    if exc.msg not in feedbacks:
        feedbacks.append(exc.msg)
    module, _inputs, prediction = failed
    signature = getattr(module, "new_signature", None) or module.signature
    return {name: getattr(prediction, name, None) for name in signature.output_fields}


def handle_assert_forward(assertion_handler: Handler, **handler_args: Any) -> Callable[..., Any]:
    """A ``forward`` that runs the module's original ``_forward`` through the handler."""

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        args_to_vals = inspect.getcallargs(self._forward, *args, **kwargs)
        if "bypass_assert" in args_to_vals:
            configure(bypass_assert=args_to_vals["bypass_assert"])
        wrapped_forward = assertion_handler(self._forward, **handler_args)
        return wrapped_forward(*args, **kwargs)

    return forward


default_assertion_handler = backtrack_handler


def _patch_forward(module: Any, forward: Callable[..., Any]) -> None:
    """Route both faces of ``module`` through the handled ``forward``.

    The handler is sync (it clears the trace and re-runs the program), so the async face runs
    it in a worker thread; a program written with only ``aforward`` has it driven to completion
    inside the handler. Everything set on the instance is a bound method, so ``deepcopy`` (the
    optimizers copy programs) rebinds it to the copy.
    """
    from tgispy.primitives._module import Module

    is_module = isinstance(module, Module)
    target: Any = module  # attributes are set on the instance, over the class's methods
    if is_module and type(module).forward is Module.forward:
        target._forward = _class_aforward_sync.__get__(module)
    else:
        target._forward = module.forward
    target.forward = forward.__get__(module)
    if is_module:
        target.aforward = _handled_aforward.__get__(module)


def _class_aforward_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
    from tgispy._sync import run_sync

    return run_sync(type(self).aforward(self, *args, **kwargs))


async def _handled_aforward(self: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(self.forward, *args, **kwargs)


def assert_transform_module(
    module: Any, assertion_handler: Handler = default_assertion_handler, **handler_args: Any
) -> Any:
    """Make ``module`` handle its assertions: wrap ``forward``, wrap predictors in ``Retry``.

    Example:
        >>> import tgispy as dspy
        >>> class QA(dspy.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.answer = dspy.ChainOfThought("question -> answer")
        ...     def forward(self, question):
        ...         return self.answer(question=question)
        >>> type(dspy.assert_transform_module(QA()).answer).__name__
        'Retry'
    """
    from tgispy.predict._retry import Retry  # predict imports primitives
    from tgispy.primitives._module import set_attribute_by_name

    if not getattr(module, "forward", False):
        raise ConfigError("Module must have a forward method to have assertions handled.")
    if getattr(module, "_forward", False):
        logger.info("Module %s already has a _forward method. Skipping...", type(module).__name__)
    _patch_forward(module, handle_assert_forward(assertion_handler, **handler_args))
    named = module.named_predictors()
    if all(isinstance(p, Retry) for _, p in named):
        pass  # the Retry mapping was applied outside
    elif not any(isinstance(p, Retry) for _, p in named):
        for name, predictor in named:
            # A module that is itself a predictor (a bare ChainOfThought) cannot replace
            # itself; as in DSPy 2.4 it is retried as is.
            if name != "self":
                set_attribute_by_name(module, name, Retry(predictor))
    else:
        raise ConfigError("Module has mixed predictors, can't apply Retry mapping.")
    module._assert_transformed = True
    return module
