"""``MultiChainComparison``: compare M reasoning attempts and produce a corrected answer
(DSPy 2.4.17)."""

from __future__ import annotations

from typing import Any

from tgispy.errors import ConfigError
from tgispy.predict._predict import Predict
from tgispy.primitives._module import Module
from tgispy.primitives._prediction import Prediction
from tgispy.signatures._field import InputField, OutputField
from tgispy.signatures._signature import ensure_signature

__all__ = ["MultiChainComparison"]


class MultiChainComparison(Module):
    """Show the LM ``M`` student attempts (rationale + answer) and ask for the accurate one.

    Args:
        signature: the task's signature.
        M: how many attempts ``forward`` receives.
        temperature: sampling temperature of the comparison.
        **config: other generation parameters.

    Call with ``completions=`` (e.g. a ``ChainOfThought``'s ``.completions`` with ``n=M``) and
    the task's inputs.
    """

    def __init__(self, signature: Any, M: int = 3, temperature: float = 0.7, **config: Any) -> None:
        super().__init__()
        self.M = M
        signature = ensure_signature(signature)
        *_, self.last_key = signature.output_fields.keys()
        for idx in range(M):
            signature = signature.append(
                f"reasoning_attempt_{idx + 1}",
                InputField(prefix=f"Student Attempt #{idx + 1}:", desc="${reasoning attempt}"),
            )
        signature = signature.prepend(
            "rationale",
            OutputField(
                prefix="Accurate Reasoning: Thank you everyone. Let's now holistically",
                desc="${corrected reasoning}",
            ),
        )
        self.predict = Predict(signature, temperature=temperature, **config)

    def forward(self, completions: Any, **kwargs: Any) -> Prediction:
        attempts = []
        for index in range(len(completions)):
            c = completions[index]
            rationale = c.rationale.strip().split("\n")[0].strip()
            answer = c[self.last_key].strip().split("\n")[0].strip()
            attempts.append(
                f"«I'm trying to {rationale} I'm not sure but my prediction is {answer}»"
            )
        if len(attempts) != self.M:
            raise ConfigError(
                f"The number of attempts ({len(attempts)}) doesn't match the expected number M "
                f"({self.M}). Please set the correct value for M when initializing "
                "MultiChainComparison."
            )
        kwargs = {
            **{f"reasoning_attempt_{idx + 1}": a for idx, a in enumerate(attempts)},
            **kwargs,
        }
        return self.predict(**kwargs)  # type: ignore[no-any-return]
