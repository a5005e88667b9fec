"""Generation for typed outputs: constrained by TGI grammars, or parsed with one retry.

:func:`agenerate_typed` is the one async shell; the adapter's :class:`~tgispy.adapters.TypedPlan`
builds every prompt, message list and grammar, and parses every completion.

* The LM supports grammars (``await lm.supports_grammar()``, from TGI's ``/info`` version): the
  request carries ``grammar`` (``/generate``) or ``response_format`` (chat), so the completion
  has the right shape by construction. A completion that still fails validation (cut off by
  ``max_tokens``, a value outside a pydantic constraint) raises ``ParseError`` at once: the same
  greedy request would fail the same way.
* Otherwise (an older TGI, ``JSONAdapter(grammar=False)``, an LM without grammars such as
  ``DummyLM``): the completion is parsed as text; if no completion parses, the request is sent
  once more with the bad completion and the error appended, then ``ParseError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from tgispy.adapters import TypedAdapter
from tgispy.adapters._json import Invalid, TypedPlan
from tgispy.errors import ConfigError, ParseError
from tgispy.lm._base import as_lm
from tgispy.predict._generate import _call_lm

__all__ = ["agenerate_typed", "lm_supports_grammar", "request_config", "uses_chat"]

#: where a JSON answer ends when nothing constrains it: DSPy's prompts separate parts by blank lines
_TEXT_JSON_STOP = ["\n\n"]


async def lm_supports_grammar(lm: Any) -> bool:
    """Whether ``lm`` can constrain decoding now: it declares grammars and the server says yes.

    Example:
        >>> import asyncio
        >>> from tgispy.utils.dummies import DummyLM
        >>> asyncio.run(lm_supports_grammar(DummyLM([])))
        False
    """
    result: Any = as_lm(lm).supports_grammar()
    if inspect.isawaitable(result):  # a test double may answer synchronously
        result = await result
    return bool(result)


def uses_chat(adapter: TypedAdapter, lm: Any) -> bool:
    """Chat messages or one prompt: the adapter's choice, else the LM's ``mode``.

    Raises:
        ConfigError: chat was asked for but the LM has no chat API (``achat``).
    """
    model = as_lm(lm)
    has_chat = model.capabilities.chat
    if adapter.chat is None:
        return has_chat and model.mode == "chat"
    if adapter.chat and not has_chat:
        raise ConfigError(
            f"{adapter!r} sends chat messages, but {type(lm).__name__} has no chat API (achat); "
            "use tgispy.HFClientTGI(..., mode='chat') or adapter='json'"
        )
    return adapter.chat


def request_config(
    plan: TypedPlan,
    config: Mapping[str, Any],
    lm_kwargs: Mapping[str, Any],
    *,
    constrained: bool,
) -> dict[str, Any]:
    """The generation parameters of a typed request.

    Adds the grammar (``grammar`` for a prompt, ``response_format`` for chat) when
    ``constrained``, unless ``config`` already has one. A stop sequence the LM has by default
    (DSPy's ``"\\n"``) would cut a JSON object: with a grammar or chat the model stops by
    itself, so it is dropped; for unconstrained JSON text it becomes a blank line. A ``stop``
    in ``config`` (the module's or the call's) is kept as given.

    Example:
        >>> from tgispy import Signature
        >>> from tgispy.adapters import JSONAdapter
        >>> plan = JSONAdapter().plan(Signature("q -> a: list[int]"))
        >>> request_config(plan, {}, {"stop": ["\\n"]}, constrained=True)["stop"] is None
        True
    """
    out = dict(config)
    if constrained and "grammar" not in config and "response_format" not in config:
        # A grammar the caller passed is theirs to keep; otherwise the signature's.
        if plan.chat:
            out["response_format"] = plan.response_format()
        else:
            out["grammar"] = plan.grammar()
    if "stop" not in config and lm_kwargs.get("stop") and plan.single is None:
        out["stop"] = None if constrained or plan.chat else list(_TEXT_JSON_STOP)
    return out


async def _achat(lm: Any, messages: list[dict[str, str]], config: Mapping[str, Any]) -> list[str]:
    response = await lm.achat(messages, **config)
    texts = [choice.get("text") for choice in response.get("choices", [])]
    for text in texts:
        if not isinstance(text, str):
            raise ParseError(f"the LM's chat reply is a {type(text).__name__}, not a string")
    return texts


async def agenerate_typed(
    lm: Any,
    adapter: TypedAdapter,
    signature: Any,
    *,
    demos: Sequence[Mapping[str, Any]],
    inputs: Mapping[str, Any],
    config: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Run a signature for typed outputs; return the typed output values of each completion.

    Args:
        lm: an LM (``acall`` or a sync ``__call__``; ``achat`` for chat; optionally
            ``supports_grammar()``).
        adapter: the :class:`~tgispy.adapters.JSONAdapter` (or ``ChatAdapter``).
        signature: the signature class.
        demos: demonstrations as mappings.
        inputs: the input values.
        config: generation parameters for this call.

    Raises:
        ParseError: no completion parsed (after the one retry when unconstrained); carries the
            raw completion.
        ConfigError: an output type that cannot be described as JSON, or chat without a chat API.
    """
    chat = uses_chat(adapter, lm)
    plan = adapter.plan(signature, chat=chat)
    constrained = adapter.use_grammar and await lm_supports_grammar(lm)
    lm_kwargs: Mapping[str, Any] = as_lm(lm).kwargs
    call_config = request_config(plan, config, lm_kwargs, constrained=constrained)

    # Through the adapter, so a subclass's format / format_messages / parse is what is used.
    if chat:
        messages = adapter.format_messages(signature, demos, inputs)
        texts = await _achat(lm, messages, call_config)
    else:
        prompt = adapter.format(signature, demos, inputs)
        texts = await _call_lm(lm, prompt, call_config)
    if not texts:
        raise ParseError("the LM returned no completions for the prompt")
    results = [adapter.check(signature, inputs, text, chat=chat) for text in texts]
    parsed = [r for r in results if not isinstance(r, Invalid)]
    if parsed:
        return parsed
    first = results[0]
    assert isinstance(first, Invalid)
    if constrained:
        raise plan.error(first)

    # Unconstrained: one more try that shows the model what was wrong.
    if chat:
        texts = await _achat(lm, plan.retry_messages(messages, first), call_config)
    else:
        texts = await _call_lm(lm, plan.retry_prompt(prompt, first), call_config)
    results = [adapter.check(signature, inputs, text, chat=chat) for text in texts]
    parsed = [r for r in results if not isinstance(r, Invalid)]
    if parsed:
        return parsed
    last = results[0] if results else first
    assert isinstance(last, Invalid)
    raise plan.error(last)
