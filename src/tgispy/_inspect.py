"""Module-level ``inspect_history``: show the configured LM's last prompts and completions."""

from __future__ import annotations

from typing import Any

from tgispy._settings import current
from tgispy.errors import ConfigError

__all__ = ["inspect_history"]


def inspect_history(n: int = 1, skip: int = 0) -> Any:
    """Print and return the last ``n`` calls of the configured LM (completions in green).

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.utils.dummies import DummyLM
        >>> dspy.configure(lm=DummyLM(["4"]))
        >>> _ = dspy.Predict("question -> answer")(question="2+2?")
        >>> "Question: 2+2?" in dspy.inspect_history(n=1)  # doctest: +ELLIPSIS
        <BLANKLINE>
        ...
        True
    """
    lm = current().lm
    if lm is None:
        raise ConfigError("inspect_history() needs a configured LM: tgispy.configure(lm=...)")
    return lm.inspect_history(n, skip)
