"""``ChainOfThoughtWithHint``: ``ChainOfThought`` that shows a ``hint`` when one is given
(DSPy 2.4.17)."""

from __future__ import annotations

from typing import Any

from tgispy.predict._predict import Predict
from tgispy.primitives._prediction import Prediction
from tgispy.signatures._field import OutputField

__all__ = ["ChainOfThoughtWithHint"]


class ChainOfThoughtWithHint(Predict):
    """A predictor with a ``rationale`` (and, when ``hint=`` is passed, a ``hint``) field.

    As in DSPy 2.4.17, both are inserted before the last output field, and the hint is an
    output field placed before the rationale.

    Args:
        signature: the task's signature.
        rationale_type: the rationale's ``OutputField``.
        activated: ``False`` runs the plain signature.
        **config: generation parameters.
    """

    def __init__(
        self, signature: Any, rationale_type: Any = None, activated: bool = True, **config: Any
    ) -> None:
        super().__init__(signature, **config)
        self.activated = activated
        *_, last_key = self.signature.fields.keys()
        rationale_type = rationale_type or OutputField(
            prefix="Reasoning: Let's think step by step in order to",
            desc="${produce the " + last_key + "}. We ...",
        )
        self.extended_signature1 = self.signature.insert(-2, "rationale", rationale_type, type_=str)
        self.extended_signature2 = self.extended_signature1.insert(
            -2, "hint", OutputField(), type_=str
        )

    def _pick(self, kwargs: dict[str, Any]) -> Any:
        if self.activated is True:
            return self.extended_signature2 if kwargs.get("hint") else self.extended_signature1
        return self.signature

    def forward(self, **kwargs: Any) -> Prediction:
        return super().forward(signature=self._pick(kwargs), **kwargs)

    async def aforward(self, **kwargs: Any) -> Prediction:
        if "signature" not in kwargs:
            kwargs["signature"] = self._pick(kwargs)
        return await super().aforward(**kwargs)
