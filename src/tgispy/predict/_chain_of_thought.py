"""``ChainOfThought``: ``Predict`` with a reasoning field before the outputs (DSPy 2.4.17)."""

from __future__ import annotations

from typing import Any

from tgispy.errors import ConfigError
from tgispy.predict._predict import Predict
from tgispy.primitives._module import Module
from tgispy.primitives._prediction import Prediction
from tgispy.signatures._field import OutputField
from tgispy.signatures._signature import ensure_signature

__all__ = ["ChainOfThought"]

RATIONALE_PREFIX = "Reasoning: Let's think step by step in order to"


class ChainOfThought(Module):
    """Ask the LM to reason step by step (a ``rationale`` field) before producing the outputs.

    Args:
        signature: ``"question -> answer"`` or a ``Signature`` subclass.
        rationale_type: the ``OutputField`` to use for the rationale (default: prefix
            ``Reasoning: Let's think step by step in order to``, desc
            ``${produce the <last output>}. We ...``).
        activated: ``False`` runs the plain signature, without the rationale.
        **config: generation parameters, as for :class:`~tgispy.Predict`.

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.utils.dummies import DummyLM
        >>> dspy.configure(lm=DummyLM(["produce the answer. We know it.\\nAnswer: Paris"]))
        >>> dspy.ChainOfThought("question -> answer")(question="Capital of France?").answer
        'Paris'
    """

    def __init__(
        self, signature: Any, rationale_type: Any = None, activated: bool = True, **config: Any
    ) -> None:
        super().__init__()
        self.activated = activated
        self.signature: Any = ensure_signature(signature)
        if self.signature is None or not self.signature._output_fields:
            raise ConfigError(
                "ChainOfThought needs a signature with an output field, e.g. 'question -> answer'"
            )
        *_, last_key = self.signature._output_fields
        rationale_type = rationale_type or OutputField(
            prefix=RATIONALE_PREFIX, desc=f"${{produce the {last_key}}}. We ..."
        )
        extended = self.signature.prepend("rationale", rationale_type, type_=str)
        self._predict = Predict(extended, **config)
        self._predict.extended_signature = extended

    def _signature_for(self, kwargs: dict[str, Any]) -> Any:
        if self.activated not in (True, False):
            raise ConfigError(f"activated must be True or False, got {self.activated!r}")
        default = self._predict.extended_signature if self.activated else self.signature
        return kwargs.pop("new_signature", default)

    def forward(self, **kwargs: Any) -> Prediction:
        signature = self._signature_for(kwargs)
        return self._predict(signature=signature, **kwargs)  # type: ignore[no-any-return]

    async def aforward(self, **kwargs: Any) -> Prediction:
        signature = self._signature_for(kwargs)
        return await self._predict.acall(signature=signature, **kwargs)  # type: ignore[no-any-return]

    @property
    def demos(self) -> list[Any]:
        return self._predict.demos

    @demos.setter
    def demos(self, value: list[Any]) -> None:
        self._predict.demos = value

    @property
    def extended_signature(self) -> Any:
        return self._predict.extended_signature
