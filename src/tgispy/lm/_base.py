"""The LM base class: DSPy 2.4's LM call surface over one async core.

Subclasses implement a single coroutine, :meth:`LM.acomplete`, returning a :class:`Generation`
(completion texts plus finish reasons, usage, replica). Everything else is shared: the DSPy 2.4
``_generate`` shape ``{"prompt": str, "choices": [{"text": str}, ...]}``, history, ``__call__``,
``request``, and the sync face.

DSPy 2.4's custom-LM pattern works too: a subclass that overrides ``__call__``, or
``basic_request`` / ``request``, is called through that override by every program (``Predict``
awaits :meth:`LM.acall`, which routes to the override in a worker thread). What an LM can do is
declared, not sniffed: :attr:`LM.capabilities` (chat, grammar, streaming), and
:func:`as_lm` turns any other object with a DSPy-style ``__call__`` into an ``LM`` at the one
boundary where programs meet models.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy as _copy
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, overload

from tgispy._sync import run_sync

__all__ = [
    "LM",
    "CallableLM",
    "Capabilities",
    "Completion",
    "Generation",
    "History",
    "HistoryEntry",
    "as_lm",
]

HistoryEntry = dict[str, Any]


def render_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """A chat call's messages as the one ``prompt`` text its history entry shows."""
    return "\n\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in messages)


_GREEN = "\x1b[32m"
_RESET = "\x1b[0m"


@dataclass(frozen=True)
class Completion:
    """One generated sequence."""

    text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None
    logprob: float | None = None


@dataclass(frozen=True)
class Generation:
    """Everything one LM call produced: completions plus metadata for history and stats."""

    prompt: str
    completions: tuple[Completion, ...]
    usage: dict[str, int] | None = None
    replica: str | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        """The DSPy 2.4 ``_generate`` result: ``{"prompt": ..., "choices": [{"text": ...}]}``."""
        return {"prompt": self.prompt, "choices": [{"text": c.text} for c in self.completions]}


class History:
    """A bounded, thread- and task-safe list of LM calls (oldest dropped first).

    Supports ``len``, iteration, indexing (``history[-1]``) and slicing, like DSPy 2.4's list,
    without growing forever in a long-running process.
    """

    def __init__(self, maxlen: int | None = 1000) -> None:
        self._items: deque[HistoryEntry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    @property
    def maxlen(self) -> int | None:
        return self._items.maxlen

    def append(self, entry: HistoryEntry) -> None:
        with self._lock:
            self._items.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def snapshot(self) -> list[HistoryEntry]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(self.snapshot())

    @overload
    def __getitem__(self, index: int) -> HistoryEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[HistoryEntry]: ...
    def __getitem__(self, index: int | slice) -> HistoryEntry | list[HistoryEntry]:
        return self.snapshot()[index]

    def __bool__(self) -> bool:
        return len(self._items) > 0

    def __repr__(self) -> str:
        return f"History({len(self)} entries, maxlen={self.maxlen})"


@dataclass(frozen=True)
class Capabilities:
    """What a language model can do, declared by its class (or instance).

    Attributes:
        chat: it takes chat messages (:meth:`LM.achat`).
        grammar: it can constrain decoding (TGI ``grammar`` / ``response_format``); a server may
            still say no at run time, see :meth:`LM.supports_grammar`.
        streaming: it streams tokens.

    Example:
        >>> Capabilities(chat=True).grammar
        False
    """

    chat: bool = False
    grammar: bool = False
    streaming: bool = False


# The user-written overrides running here, as (id(lm), "call" | "request"): calls they make into
# the base class (super().__call__, super().basic_request ...) take the core path instead of
# looping back into the override.
_OVERRIDE_RUNNING: contextvars.ContextVar[frozenset[tuple[int, str]]] = contextvars.ContextVar(
    "tgispy_lm_override", default=frozenset()
)


def _run_override(lm: Any, kind: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    token = _OVERRIDE_RUNNING.set(_OVERRIDE_RUNNING.get() | {(id(lm), kind)})
    try:
        return method(*args, **kwargs)
    finally:
        _OVERRIDE_RUNNING.reset(token)


class LM:
    """Base class of every tgispy language model.

    Args:
        model: the model id (used in cache keys and history).
        history_size: how many calls :attr:`history` keeps (``None`` = unbounded).
        **kwargs: default generation parameters, merged under each call's kwargs.

    Example:
        >>> class Echo(LM):
        ...     async def acomplete(self, prompt, **kwargs):
        ...         return Generation(prompt, (Completion(prompt.upper()),))
        >>> Echo("echo")("hi")
        ['HI']
    """

    provider: str = "default"
    #: what this model can do; ``None``: derived from the methods its class implements
    declared_capabilities: ClassVar[Capabilities | None] = None
    #: ``"chat"`` when prompts should go out as chat messages (see ``HFClientTGI(mode=...)``)
    mode: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> LM:
        # DSPy 2.4.17's ``dspy.LM("openai/gpt-4o-mini", api_base=...)`` is a client, not this
        # base class: a "provider/model" name given to ``LM`` itself builds that client.
        model = args[0] if args else kwargs.get("model")
        if cls is LM and isinstance(model, str) and "/" in model:
            from tgispy.lm._provider import ProviderLM

            return ProviderLM(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, model: str, *, history_size: int | None = 1000, **kwargs: Any) -> None:
        self.model = model
        self.kwargs: dict[str, Any] = {
            "temperature": 0.0,
            "max_tokens": 150,
            "top_p": 1,
            "n": 1,
            **kwargs,
        }
        self.history = History(history_size)

    # ---- capabilities ----------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        """What this model can do: :attr:`declared_capabilities`, else what its class implements
        (``achat`` -> chat, ``supports_grammar`` -> grammar, ``astream`` -> streaming)."""
        declared = type(self).declared_capabilities
        if declared is not None:
            return declared
        cls = type(self)
        return Capabilities(
            chat=callable(getattr(cls, "achat", None)),
            grammar=cls.supports_grammar is not LM.supports_grammar,
            streaming=callable(getattr(cls, "astream", None)),
        )

    async def supports_grammar(self) -> bool:
        """Whether a request may carry a grammar now (servers answer this at run time)."""
        return self.capabilities.grammar

    # ---- the one thing subclasses implement -------------------------------------------------
    async def acomplete(self, prompt: str, **kwargs: Any) -> Generation:
        """Generate completions for ``prompt`` with per-call ``kwargs`` over :attr:`kwargs`.

        The default serves DSPy 2.4-style subclasses that override ``basic_request`` (or
        ``request``): it calls the override in a worker thread and reads its
        ``{"choices": [{"text": ...}]}`` answer.
        """
        override = self._request_override()
        if override is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement acomplete() (or, DSPy 2.4-style, "
                "basic_request() or __call__())"
            )
        response = await asyncio.to_thread(
            _run_override, self, "request", override, prompt, **kwargs
        )
        return _generation_from_response(prompt, response)

    def _request_override(self) -> Any:
        if (id(self), "request") in _OVERRIDE_RUNNING.get():
            return None
        cls = type(self)
        if cls.basic_request is not LM.basic_request:
            return self.basic_request
        if cls.request is not LM.request:
            return self.request
        return None

    def _call_override(self) -> bool:
        return type(self).__call__ is not LM.__call__ and (
            (id(self), "call") not in _OVERRIDE_RUNNING.get()
        )

    # ---- async core -------------------------------------------------------------------------
    async def agenerate(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        """Async twin of ``_generate``: ``{"prompt": str, "choices": [{"text": str}, ...]}``."""
        return (await self.acomplete(prompt, **kwargs)).to_response()

    async def _arecorded(self, prompt: str, **kwargs: Any) -> Generation:
        started = time.perf_counter()
        generation = await self.acomplete(prompt, **kwargs)
        if type(self).acomplete is LM.acomplete:
            return generation  # a DSPy 2.4-style basic_request keeps its own history
        self._record(
            prompt,
            generation.to_response(),
            kwargs={**self.kwargs, **kwargs},
            raw_kwargs=kwargs,
            usage=generation.usage,
            started=started,
            replica=generation.replica,
            cached=generation.cached,
            finish_reasons=[c.finish_reason for c in generation.completions],
        )
        return generation

    def _record(
        self,
        prompt: str,
        response: Mapping[str, Any],
        *,
        kwargs: Mapping[str, Any],
        raw_kwargs: Mapping[str, Any],
        usage: Mapping[str, int] | None,
        started: float,
        replica: str | None,
        cached: bool,
        finish_reasons: Sequence[str | None],
        messages: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Append one call to :attr:`history` (the one place its entries are shaped).

        ``started`` is the call's ``time.perf_counter()``; ``messages`` marks a chat call.
        """
        entry: dict[str, Any] = {"prompt": prompt}
        if messages is not None:
            entry["messages"] = list(messages)
        entry.update(
            response=response,
            kwargs=kwargs,
            raw_kwargs=raw_kwargs,
            usage=usage,
            latency=time.perf_counter() - started,
            replica=replica,
            cached=cached,
            finish_reasons=list(finish_reasons),
            timestamp=time.time(),
        )
        self.history.append(entry)

    async def abasic_request(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        """Generate, record the call in :attr:`history`, return the ``_generate`` shape."""
        return (await self._arecorded(prompt, **kwargs)).to_response()

    async def arequest(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        return await self.abasic_request(prompt, **kwargs)

    async def acall(
        self,
        prompt: str,
        only_completed: bool = True,
        return_sorted: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of ``__call__``: the completion texts for ``prompt``.

        A subclass that overrides ``__call__`` (DSPy 2.4's custom-LM pattern) is called through
        it, in a worker thread.
        """
        if self._call_override():
            texts = await asyncio.to_thread(
                _run_override,
                self,
                "call",
                self.__call__,
                prompt,
                only_completed,
                return_sorted,
                **kwargs,
            )
            return list(texts)
        generation = await self._arecorded(prompt, **kwargs)
        return _texts(generation, only_completed, return_sorted)

    # ---- sync face --------------------------------------------------------------------------
    def _generate(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        return run_sync(self.agenerate(prompt, **kwargs))

    def basic_request(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        return run_sync(self.abasic_request(prompt, **kwargs))

    def request(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        return run_sync(self.arequest(prompt, **kwargs))

    def __call__(
        self,
        prompt: str,
        only_completed: bool = True,
        return_sorted: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        return run_sync(self.acall(prompt, only_completed, return_sorted, **kwargs))

    def copy(self, **kwargs: Any) -> LM:
        """A copy with updated default kwargs and a fresh history."""
        new = _copy.copy(self)
        new.kwargs = {**self.kwargs, **kwargs}
        new.history = History(self.history.maxlen)
        return new

    def inspect_history(self, n: int = 1, skip: int = 0) -> str:
        """Print and return the last ``n`` prompts with their completions (completion in green)."""
        text = format_history(self.history.snapshot(), n=n, skip=skip)
        print(text)
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


class CallableLM(LM):
    """An :class:`LM` around any object with a DSPy-style ``__call__(prompt, **kwargs)``.

    Built by :func:`as_lm`; the wrapped object's ``kwargs`` (if any) are its defaults.
    """

    def __init__(self, wrapped: Any) -> None:
        super().__init__(str(getattr(wrapped, "model", type(wrapped).__name__)))
        self.wrapped = wrapped
        self.kwargs = dict(getattr(wrapped, "kwargs", None) or {})

    async def acall(
        self,
        prompt: str,
        only_completed: bool = True,
        return_sorted: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        texts = await asyncio.to_thread(self.wrapped, prompt, **kwargs)
        return list(texts)

    def __repr__(self) -> str:
        return f"CallableLM({self.wrapped!r})"


def as_lm(lm: Any) -> LM:
    """``lm`` as an :class:`LM`: itself, or a :class:`CallableLM` around a foreign callable.

    The one place where programs inspect what they were given as a model.

    Example:
        >>> as_lm(lambda prompt, **kw: ["hi"]).model
        'function'
    """
    if isinstance(lm, LM):
        return lm
    if not callable(lm):
        raise TypeError(f"a language model must be an LM or callable, got {type(lm).__name__}")
    return CallableLM(lm)


def _generation_from_response(prompt: str, response: Any) -> Generation:
    """A :class:`Generation` from DSPy 2.4's ``{"choices": [{"text": ...}]}`` (or OpenAI's
    ``{"choices": [{"message": {"content": ...}}]}``) response shape."""
    choices: Sequence[Any] = []
    if isinstance(response, Mapping):
        choices = response.get("choices") or []
    completions = []
    for choice in choices:
        text = choice.get("text") if isinstance(choice, Mapping) else None
        if text is None and isinstance(choice, Mapping):
            message = choice.get("message")
            text = message.get("content") if isinstance(message, Mapping) else None
        reason = choice.get("finish_reason") if isinstance(choice, Mapping) else None
        completions.append(Completion(str(text or ""), finish_reason=reason))
    return Generation(prompt, tuple(completions))


def _texts(generation: Generation, only_completed: bool, return_sorted: bool) -> list[str]:
    completions = list(generation.completions)
    if only_completed:
        # As DSPy 2.4's LMs did: drop sequences cut by the length limit when any other finished.
        finished = [c for c in completions if c.finish_reason != "length"]
        if finished:
            completions = finished
    if return_sorted:
        completions.sort(key=lambda c: c.logprob if c.logprob is not None else 0.0, reverse=True)
    return [c.text for c in completions]


def format_history(entries: list[HistoryEntry], n: int = 1, skip: int = 0) -> str:
    """Render history entries as DSPy 2.4's ``inspect_history`` did (pure)."""
    end = len(entries) - skip
    chosen = entries[max(0, end - n) : max(0, end)]
    out: list[str] = []
    for entry in chosen:
        prompt = str(entry.get("prompt", ""))
        response = entry.get("response") or {}
        choices = response.get("choices") or []
        text = str(choices[0].get("text", "")) if choices else ""
        block = "\n\n\n" + prompt + _GREEN + text + _RESET
        if len(choices) > 1:
            block += f" \t (and {len(choices) - 1} other completions)"
        out.append(block)
    return "".join(out) + "\n\n\n"
