"""The optimizer base class and the checks every optimizer shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.primitives import Example, Module

__all__ = ["Teleprompter", "check_trainset"]


class Teleprompter:
    """Base class of optimizers ("teleprompters"): ``compile(student, *, trainset, ...)``.

    Example:
        >>> class KeepAsIs(Teleprompter):
        ...     def compile(self, student, *, trainset):
        ...         return student
    """

    def compile(self, student: Any, *, trainset: Sequence[Example], **kwargs: Any) -> Any:
        """Return an optimized copy of ``student``."""
        raise NotImplementedError


def check_trainset(trainset: Any, *, name: str = "trainset") -> list[Example]:
    """``trainset`` as a list, after checking it holds examples with input keys."""
    if trainset is None:
        raise ConfigError(f"compile needs a {name}: a list of dspy.Example(...).with_inputs(...)")
    examples = list(trainset)
    for idx, example in enumerate(examples):
        if not isinstance(example, Example):
            raise ConfigError(
                f"{name}[{idx}] is a {type(example).__name__}, not a dspy.Example; build it "
                "with dspy.Example(question=..., answer=...).with_inputs('question')"
            )
    return examples


def check_module(program: Any, *, name: str = "student") -> None:
    if not isinstance(program, Module):
        raise ConfigError(
            f"the {name} must be a dspy.Module (e.g. dspy.ChainOfThought('question -> answer')), "
            f"got {type(program).__name__}"
        )
