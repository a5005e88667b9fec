"""``majority``: the most common answer among completions (DSPy 2.4.17's ``dspy.majority``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tgispy.errors import ConfigError
from tgispy.primitives._prediction import Completions, Prediction

__all__ = ["default_normalize", "majority"]


def default_normalize(s: str) -> str | None:
    """SQuAD normalization; ``None`` (ignored) for an empty result."""
    from tgispy.dsp._metrics import normalize_text  # tgispy.dsp loads on first use

    return normalize_text(s) or None


def majority(
    prediction_or_completions: Any,
    normalize: Callable[[Any], Any] | None = default_normalize,
    field: str | None = None,
) -> Prediction:
    """The first completion whose (normalized) ``field`` value is the most common.

    ``field`` defaults to the last output field. Values that normalize to ``None`` are ignored
    (unless all do); ties go to the earlier completion.

    Example:
        >>> from tgispy import Completions
        >>> votes = Completions([{"answer": "Paris"}, {"answer": "Rome"}, {"answer": "paris"}])
        >>> majority(votes).answer
        'Paris'
    """
    if not isinstance(prediction_or_completions, Prediction | Completions | list):
        raise ConfigError("majority() takes a Prediction, Completions or a list of completions")
    if isinstance(prediction_or_completions, Prediction):
        completions: Any = prediction_or_completions.completions
    else:
        completions = prediction_or_completions
    signature = getattr(completions, "signature", None)
    items = [completions[i] for i in range(len(completions))]
    if not field:
        if signature is not None:
            field = list(signature.output_fields)[-1]
        else:
            field = list(items[0].keys())[-1]
    norm = normalize or (lambda x: x)
    values = [norm(c[field]) for c in items]
    counted = [v for v in values if v is not None] or values
    counts: dict[Any, int] = {}
    for value in counted:
        counts[value] = counts.get(value, 0) + 1
    winner = max(counts, key=lambda v: counts[v])
    chosen = next(c for c in items if norm(c[field]) == winner)
    return Prediction.from_completions([chosen], signature=signature)
