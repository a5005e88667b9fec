"""``Retry``: a predictor re-run with its past outputs and feedback (DSPy 2.4's ``dspy.Retry``).

:func:`~tgispy.primitives.assertions.assert_transform_module` wraps every predictor of a program
in a ``Retry``. Normally it calls the wrapped predictor unchanged; when the backtracking handler
picks it to retry, it calls it with the signature extended by one ``Previous <Field>:`` input per
output field and an ``Instructions:`` input holding the feedback (DSPy 2.4.17's prompt).
"""

from __future__ import annotations

from typing import Any

from tgispy._settings import current as current_settings
from tgispy.predict._chain_of_thought import ChainOfThought
from tgispy.predict._predict import Predict
from tgispy.primitives._assertions import backtrack_state
from tgispy.primitives._prediction import Prediction
from tgispy.signatures._field import InputField

__all__ = ["Retry"]

_RESERVED = ("_trace", "demos", "signature", "new_signature", "config", "lm", "past_outputs")


def retry_signature(signature: Any) -> Any:
    """``signature`` plus ``past_<output>`` inputs and a ``feedback`` input, as DSPy 2.4 built it.

    Example:
        >>> from tgispy import Signature
        >>> list(retry_signature(Signature("question -> answer")).input_fields)
        ['question', 'past_answer', 'feedback']
    """
    for key, value in signature.output_fields.items():
        actual_prefix = value.json_schema_extra["prefix"].split(":")[0] + ":"
        signature = signature.append(
            f"past_{key}",
            InputField(
                prefix="Previous " + actual_prefix,
                desc=f"past {actual_prefix[:-1]} with errors",
                format=value.json_schema_extra.get("format"),
            ),
        )
    return signature.append(
        "feedback",
        InputField(prefix="Instructions:", desc="Some instructions you must satisfy", format=str),
    )


class Retry(Predict):
    """Wrap a ``Predict`` or ``ChainOfThought`` so assertion backtracking can re-run it.

    Args:
        module: the predictor to wrap.

    Example:
        >>> import tgispy as dspy
        >>> retry = dspy.Retry(dspy.Predict("question -> answer"))
        >>> list(retry.new_signature.input_fields)
        ['question', 'past_answer', 'feedback']
    """

    def __init__(self, module: Any) -> None:
        super().__init__(module.signature)
        self.module = module
        self.original_signature = (
            module.extended_signature if isinstance(module, ChainOfThought) else module.signature
        )
        self.original_forward = module.forward
        self.new_signature = retry_signature(self.original_signature)

    def forward(self, *, past_outputs: dict[str, Any], **kwargs: Any) -> Prediction:  # type: ignore[override]
        """Call the wrapped predictor with the retry signature and the past outputs."""
        new_signature = kwargs.pop("new_signature", None)
        if new_signature:
            self.original_signature = new_signature
            self.new_signature = retry_signature(self.original_signature)
        for key, value in past_outputs.items():
            past_key = f"past_{key}"
            if past_key in self.new_signature.input_fields:
                kwargs[past_key] = value
        kwargs["new_signature"] = self.new_signature
        return self.original_forward(**kwargs)  # type: ignore[no-any-return]

    def _prepare(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        kwargs["_trace"] = False
        kwargs.setdefault("demos", self.demos if self.demos is not None else [])
        state = backtrack_state()
        backtracking = state is not None and state.backtrack_to is self
        if backtracking:
            assert state is not None
            for key, value in state.backtrack_to_args.items():
                kwargs.setdefault(key, value)
        return kwargs, backtracking

    def _record(self, kwargs: dict[str, Any], pred: Prediction) -> Prediction:
        for key in _RESERVED:
            kwargs.pop(key, None)
        trace = current_settings().trace
        if trace is not None:
            trace.append((self, {**kwargs}, pred))
        return pred

    def __call__(self, **kwargs: Any) -> Prediction:
        kwargs, backtracking = self._prepare(kwargs)
        pred = self.forward(**kwargs) if backtracking else self.module(**kwargs)
        return self._record(kwargs, pred)

    async def acall(self, **kwargs: Any) -> Prediction:
        """Async twin of ``__call__``."""
        kwargs, backtracking = self._prepare(kwargs)
        if backtracking:
            past_outputs = kwargs.pop("past_outputs")
            new_signature = kwargs.pop("new_signature", None)
            if new_signature:
                self.original_signature = new_signature
                self.new_signature = retry_signature(new_signature)
            call = dict(kwargs)
            for key, value in past_outputs.items():
                if f"past_{key}" in self.new_signature.input_fields:
                    call[f"past_{key}"] = value
            call["new_signature"] = self.new_signature
            pred = await self.module.acall(**call)
        else:
            pred = await self.module.acall(**kwargs)
        return self._record(kwargs, pred)

    def __repr__(self) -> str:
        return f"Retry({self.module!r})"
