"""Program-wide settings (``configure`` / ``context``) on a :class:`~contextvars.ContextVar`.

DSPy 2.4 kept one settings stack per thread id: every ``configure`` pushed onto it, and a thread
seen for the first time copied the main thread's top of stack. That made a pooled worker thread
inherit whatever ``context(lm=...)`` happened to be active when it was first used, forever.

Here the settings are one frozen :class:`Settings` value:

* :func:`configure` replaces the process-wide default (seen by every thread and task that is not
  inside a :func:`context` block), or, inside a :func:`context` block, only that block's value;
* :func:`context` sets a :class:`~contextvars.ContextVar` for the ``with`` block and restores it on
  exit, so it follows asyncio tasks and never leaks into threads it was not handed to;
* :func:`copy_context_runner` hands the caller's context to a worker thread explicitly -- tgispy's
  own parallel tools (``Evaluate``, the optimizers) start every worker through it.

Example:
    >>> import tgispy as dspy
    >>> from tgispy.utils.dummies import DummyLM
    >>> dspy.configure(lm=DummyLM(["Paris"]))
    >>> with dspy.context(trace=[]):
    ...     dspy.settings.trace
    []
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from tgispy.errors import ConfigError

__all__ = [
    "Settings",
    "SettingsProxy",
    "configure",
    "context",
    "copy_context_runner",
    "current",
    "isolated_settings",
    "settings",
]

T = TypeVar("T")

#: DSPy 2.4 settings keys that code written for DSPy reads; kept so such reads keep working.
_DSPY_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "reranker": None,
        "compiled_lm": None,
        "force_reuse_cached_compilation": False,
        "compiling": False,
        "skip_logprobs": False,
        "release": 0,
        "bypass_assert": False,
        "bypass_suggest": False,
        "assert_failures": 0,
        "suggest_failures": 0,
        "experimental": False,
        "backoff_time": 10,
        "branch_idx": 0,
    }
)
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Settings:
    """One immutable snapshot of the program settings.

    Attributes:
        lm: the default language model used by ``Predict`` (``None`` until configured).
        trace: when a list, every ``Predict`` call appends ``(predictor, inputs, prediction)`` to
            it (the optimizers rely on this); ``None`` (the default) records nothing.
        adapter: the prompt adapter ``Predict`` uses (``None`` = the DSPy 2.4 template).
        rm: a retrieval model, kept for DSPy code that configures one.
        extra: any other keys passed to :func:`configure` / :func:`context`.

    Example:
        >>> Settings().replace(trace=[]).trace
        []
    """

    lm: Any = None
    trace: list[Any] | None = None
    adapter: Any = None
    rm: Any = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def replace(self, **kwargs: Any) -> Settings:
        """A copy with ``kwargs`` applied; unknown keys go to :attr:`extra`."""
        known: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        for key, value in kwargs.items():
            if key in _FIELD_NAMES:
                known[key] = value
            else:
                if extra is None:
                    extra = dict(self.extra)
                extra[key] = value
        _validate(known)
        if extra is not None:
            known["extra"] = MappingProxyType(extra)
        return replace(self, **known)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name`` (a field, an extra key or a DSPy 2.4 default), else ``default``."""
        if name in _FIELD_NAMES and name != "extra":
            return getattr(self, name)
        if name in self.extra:
            return self.extra[name]
        return _DSPY_DEFAULTS.get(name, default)

    def as_dict(self) -> dict[str, Any]:
        """Every setting as a plain dict (DSPy 2.4's ``settings.config``)."""
        out = dict(_DSPY_DEFAULTS)
        out.update(lm=self.lm, trace=self.trace, adapter=self.adapter, rm=self.rm)
        out.update(self.extra)
        return out


_FIELD_NAMES = frozenset(f.name for f in fields(Settings))


def _validate(values: Mapping[str, Any]) -> None:
    lm = values.get("lm")
    if lm is not None and not (hasattr(lm, "acall") or callable(lm)):
        raise ConfigError(
            f"lm must be a language model, got {type(lm).__name__}; e.g. "
            "tgispy.configure(lm=tgispy.HFClientTGI(model=..., port=8080))"
        )
    trace = values.get("trace")
    if trace is not None and not isinstance(trace, list):
        raise ConfigError(
            f"trace must be a list (to record calls) or None, got {type(trace).__name__}"
        )
    adapter = values.get("adapter")
    if adapter is not None and not (
        callable(getattr(adapter, "format", None)) and callable(getattr(adapter, "parse", None))
    ):
        raise ConfigError(
            f"adapter must have format() and parse() methods (see tgispy.adapters), got "
            f"{type(adapter).__name__}; leave it unset for DSPy 2.4's prompt template"
        )
    if "extra" in values:
        raise ConfigError("'extra' is reserved; pass extra settings as keyword arguments instead")


_lock = threading.Lock()
_global = Settings()
_override: contextvars.ContextVar[Settings | None] = contextvars.ContextVar(
    "tgispy_settings", default=None
)


def current() -> Settings:
    """The settings in force here: the innermost :func:`context` block's, else the global ones."""
    value = _override.get()
    return _global if value is None else value


def configure(inherit_config: bool = True, **kwargs: Any) -> None:
    """Set settings: process-wide, or for the rest of the enclosing :func:`context` block.

    Args:
        inherit_config: keep the settings not named in ``kwargs`` (``False`` resets them).
        **kwargs: ``lm=``, ``trace=``, ``adapter=``, ``rm=`` or any other key.

    Example:
        >>> from tgispy.utils.dummies import DummyLM
        >>> configure(lm=DummyLM(["4"]))
    """
    global _global
    scoped = _override.get()
    if scoped is not None:
        base = scoped if inherit_config else Settings()
        _override.set(base.replace(**kwargs))
        return
    with _lock:
        base = _global if inherit_config else Settings()
        _global = base.replace(**kwargs)


@contextmanager
def context(inherit_config: bool = True, **kwargs: Any) -> Iterator[None]:
    """Use ``kwargs`` as settings inside the ``with`` block (this thread or task only).

    The block's settings are seen by code it calls, by asyncio tasks it creates, and by worker
    threads started through :func:`copy_context_runner`; never by other threads.

    Example:
        >>> from tgispy.utils.dummies import DummyLM
        >>> with context(lm=DummyLM(["yes"])):
        ...     pass
    """
    base = current() if inherit_config else Settings()
    token = _override.set(base.replace(**kwargs))
    try:
        yield
    finally:
        _override.reset(token)


@contextmanager
def isolated_settings() -> Iterator[None]:
    """Run the ``with`` block on fresh, unconfigured settings; restore the previous ones after.

    For tests: ``configure()`` inside the block writes a private process-wide default, so one
    test's configuration never leaks into the next. Public as
    :func:`tgispy.testing.isolated_settings`.

    Example:
        >>> with isolated_settings():
        ...     configure(trace=[])
        >>> current().trace is None
        True
    """
    global _global
    with _lock:
        saved = _global
        _global = Settings()
    token = _override.set(None)
    try:
        yield
    finally:
        _override.reset(token)
        with _lock:
            _global = saved


def copy_context_runner() -> Callable[..., Any]:
    """Capture the caller's settings now; return ``run(fn, *args, **kwargs)`` for worker threads.

    Each call of ``run`` executes ``fn`` in a private copy of the captured context, so many
    workers may run at once and changes made inside one (``configure`` in a worker) stay there.

    Example:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> with context(trace=[]), ThreadPoolExecutor(2) as pool:
        ...     run = copy_context_runner()
        ...     pool.submit(run, lambda: settings.trace).result()
        []
    """
    captured = contextvars.copy_context()

    def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return captured.copy().run(fn, *args, **kwargs)

    return run


_Settings = Settings  # the class, for annotations inside SettingsProxy (which shadows the name)


class SettingsProxy:
    """``tgispy.settings``: read the current settings as attributes, change them with methods.

    ``settings.lm``, ``settings.trace`` and ``settings.config`` read the :class:`Settings` in force
    in the calling thread or task. Assigning ``settings.lm = x`` is the same as
    ``configure(lm=x)``. ``configure``, ``context``, ``copy_context_runner`` and ``current`` are
    the module's functions, so ``tgispy.settings.copy_context_runner()`` works as written.

    Example:
        >>> settings.trace is None
        True
    """

    __slots__ = ()

    # `tgispy.settings` is this object (DSPy's name), which hides the module of the same name
    # from attribute access; the module's public API is reachable through it too.
    Settings: ClassVar[type[_Settings]] = _Settings

    @property
    def lm(self) -> Any:
        return current().lm

    @property
    def trace(self) -> list[Any] | None:
        return current().trace

    @property
    def adapter(self) -> Any:
        return current().adapter

    @property
    def rm(self) -> Any:
        return current().rm

    @property
    def config(self) -> dict[str, Any]:
        """A snapshot of every setting as a dict."""
        return current().as_dict()

    def current(self) -> _Settings:
        """The frozen :class:`Settings` in force here."""
        return current()

    def configure(self, inherit_config: bool = True, **kwargs: Any) -> None:
        """See :func:`tgispy.settings.configure`."""
        configure(inherit_config, **kwargs)

    def context(self, inherit_config: bool = True, **kwargs: Any) -> Any:
        """See :func:`tgispy.settings.context`."""
        return context(inherit_config, **kwargs)

    def copy_context_runner(self) -> Callable[..., Any]:
        """See :func:`tgispy.settings.copy_context_runner`."""
        return copy_context_runner()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = current()
        if name in value.extra:
            return value.extra[name]
        if name in _DSPY_DEFAULTS:
            return _DSPY_DEFAULTS[name]
        raise AttributeError(f"tgispy.settings has no setting {name!r}; set it with configure()")

    def __setattr__(self, name: str, value: Any) -> None:
        configure(**{name: value})

    def __repr__(self) -> str:
        return f"tgispy.settings({current().as_dict()!r})"


settings = SettingsProxy()
