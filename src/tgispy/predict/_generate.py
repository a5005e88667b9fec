"""DSPy 2.4's generation loop (``dsp.generate``): prompt, parse, continue missing fields.

The decisions are pure functions (:func:`sampling_config`, :func:`farthest`,
:func:`continuation_config`); :func:`agenerate` is the one async shell that calls the LM. The sync
face of ``Predict`` runs this same coroutine, so there is one copy of the logic.

Semantics (DSPy 2.4.17):

* ``n > 1`` with ``temperature <= 0.15`` (or unset) samples at ``temperature=0.7``.
* Each completion is parsed; only the completions that got farthest through the fields are kept.
* If none has every field, the first of them is filled into the prompt and the LM continues from
  the next missing field, greedily (``n=1``, ``temperature=0.0``) with
  ``max_tokens = min(max(75, max_tokens // 2), max_tokens)``; at most two such continuations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tgispy.errors import ConfigError, ParseError
from tgispy.lm._base import as_lm

__all__ = [
    "MAX_CONTINUATIONS",
    "agenerate",
    "continuation_config",
    "farthest",
    "sampling_config",
]

#: how many times a completion that stops short is continued (DSPy's ``max_depth=2``)
MAX_CONTINUATIONS = 2


def sampling_config(config: Mapping[str, Any], lm_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``temperature=0.7`` when several completions are asked for greedily.

    Example:
        >>> sampling_config({"n": 3}, {"temperature": 0.0})
        {'n': 3, 'temperature': 0.7}
    """
    out = dict(config)
    temperature = out.get("temperature")
    if temperature is None:
        temperature = lm_kwargs.get("temperature")
    n = out.get("n") or lm_kwargs.get("n") or lm_kwargs.get("num_generations") or 1
    if (temperature is None or temperature <= 0.15) and n > 1:
        out["temperature"] = 0.7
    return out


def continuation_config(config: Mapping[str, Any], lm_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The generation parameters of a continuation request (greedy, one completion, shorter).

    Example:
        >>> continuation_config({"n": 3}, {"max_tokens": 300})
        {'n': 1, 'max_tokens': 150, 'temperature': 0.0}
    """
    max_tokens = config.get("max_tokens", lm_kwargs.get("max_tokens"))
    out: dict[str, Any] = {**config}
    if max_tokens is not None:
        out["max_tokens"] = min(max(75, max_tokens // 2), max_tokens)
    out["n"] = 1
    out["temperature"] = 0.0
    return out


def farthest(keys: Sequence[str], parsed: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep the completions that reached the farthest field; return them and how many fields.

    A field counts as reached when it is present and not ``None`` (an empty string counts).

    Example:
        >>> farthest(["q", "a"], [{"q": "x"}, {"q": "x", "a": "1"}])
        ([{'q': 'x', 'a': '1'}], 2)
    """
    reached = 0
    for idx, key in enumerate(keys):
        having = [c for c in parsed if c.get(key) is not None]
        if having:
            parsed = having
            reached = idx + 1
    return parsed, reached


async def _call_lm(lm: Any, prompt: str, config: Mapping[str, Any]) -> list[str]:
    # as_lm: a tgispy LM as is (its acall honours a DSPy 2.4-style __call__ / basic_request
    # override); any other callable (written for DSPy 2.4) runs in a worker thread.
    texts = await as_lm(lm).acall(prompt, **config)
    for text in texts:
        if not isinstance(text, str):
            raise ParseError(
                f"the LM returned a {type(text).__name__} instead of a completion string"
            )
    return list(texts)


def _outputs(
    keys: Sequence[str], inputs: Mapping[str, Any], parsed: dict[str, Any]
) -> dict[str, Any]:
    # Every field not passed in is returned -- as in DSPy 2.4, also an input that was left out,
    # if the completion happened to fill it.
    out: dict[str, Any] = {}
    for key in keys:
        if key in inputs:
            continue
        if key not in parsed:
            raise ConfigError(
                f"input field {key!r} was not given and the LM did not produce it; pass {key}=..."
            )
        out[key] = parsed[key]
    return out


async def agenerate(
    lm: Any,
    adapter: Any,
    signature: Any,
    *,
    demos: Sequence[Mapping[str, Any]],
    inputs: Mapping[str, Any],
    config: Mapping[str, Any],
    max_continuations: int = MAX_CONTINUATIONS,
) -> list[dict[str, Any]]:
    """Run the signature on ``inputs``; return one dict of the non-input fields per completion.

    Args:
        lm: a :class:`~tgispy.LM` (or any DSPy-style callable ``lm(prompt, **config)``,
            wrapped by :func:`~tgispy.lm._base.as_lm`).
        adapter: formats prompts and parses completions (see :mod:`tgispy.adapters`).
        signature: the signature class.
        demos: demonstrations as mappings.
        inputs: the input values.
        config: generation parameters for this call (already through :func:`sampling_config`).
        max_continuations: how often a completion missing fields is continued.

    Raises:
        ParseError: the LM returned nothing, or still missed fields after the continuations.
    """
    keys = [*signature._input_fields, *signature._output_fields]
    lm_kwargs: Mapping[str, Any] = as_lm(lm).kwargs
    example: dict[str, Any] = dict(inputs)
    for remaining in range(max_continuations, -1, -1):
        prompt = adapter.format(signature, demos, example)
        texts = await _call_lm(lm, prompt, config)
        if not texts:
            raise ParseError("the LM returned no completions for the prompt")
        parsed = [adapter.parse(signature, example, text) for text in texts]
        complete, reached = farthest(keys, parsed)
        if reached == len(keys):
            return [_outputs(keys, inputs, c) for c in complete]
        if remaining == 0:
            raise ParseError(
                f"the LM's completion has no {keys[reached]!r} field after {max_continuations} "
                "continuations; raise max_tokens, or check that the stop sequences do not cut "
                f"the fields off. Last completion: {texts[0][:200]!r}",
                completion=texts[0],
            )
        # Continue the first completion that got farthest, from its first missing field.
        example = complete[0]
        example[keys[reached]] = ""
        config = continuation_config(config, lm_kwargs)
    raise AssertionError("unreachable")  # pragma: no cover
