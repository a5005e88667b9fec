"""AvatarOptimizer against a recording of dspy-ai 2.4.17 (``golden/avatar_dspy24.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.teleprompt import AvatarOptimizer
from tgispy.utils.dummies import DummyLM

from .golden.avatar_dspy24 import run

_RECORDED = json.loads((Path(__file__).parent / "golden" / "avatar_dspy24.json").read_text())


def test_same_prompts_and_instruction_as_dspy_2_4_17() -> None:
    assert _RECORDED["recorded_with"]["dspy_version"] == "2.4.17"
    actual = run(dspy, DummyLM)
    expected = _RECORDED["expected"]
    assert actual["prompts"] == expected["prompts"]
    assert actual["instruction"] == expected["instruction"]


def test_needs_a_metric_and_both_kinds_of_examples() -> None:
    with pytest.raises(ConfigError, match="metric"):
        AvatarOptimizer(metric=None)  # type: ignore[arg-type]
    dspy.configure(lm=DummyLM({"": "Paris"}))
    from .golden.avatar_dspy24 import build_program

    trainset = [dspy.Example(question="Capital of France?", answer="Paris").with_inputs("question")]
    optimizer = AvatarOptimizer(metric=lambda example, pred: 1.0, max_iters=1)
    with pytest.raises(ValueError, match="No negative examples found"):
        optimizer.compile(build_program(dspy), trainset=trainset)
