"""MIPRO (v1) and BayesianSignatureOptimizer against recordings of dspy-ai 2.4.17.

The expected values were recorded by running ``golden/mipro1_dspy24.py`` with dspy-ai 2.4.17.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

import tgispy as dspy
from tgispy.teleprompt import MIPRO, BayesianSignatureOptimizer
from tgispy.utils.dummies import DummyLM

from .golden.mipro1_dspy24 import SCENARIOS, run
from .golden.mipro_dspy24 import exact

pytest.importorskip("optuna")

_RECORDED = json.loads((Path(__file__).parent / "golden" / "mipro1_dspy24.json").read_text())
_CASES = {case["scenario"]["name"]: case for case in _RECORDED["cases"]}


def test_recording_is_dspy_2_4_17_of_these_scenarios() -> None:
    assert _RECORDED["recorded_with"]["dspy_version"] == "2.4.17"
    assert [case["scenario"] for case in _RECORDED["cases"]] == json.loads(json.dumps(SCENARIOS))


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("name", list(_CASES))
def test_same_notices_proposals_trials_and_program_as_dspy_2_4_17(name: str, face: str) -> None:
    case = _CASES[name]
    actual = run(dspy, DummyLM, case["scenario"], face)
    expected = case["expected"]
    if face == "sync":  # the async face is called without the constructor's notice
        assert actual["stdout"] == expected["stdout"]
    assert actual["proposal_prompts"] == expected["proposal_prompts"]
    assert actual["task_prompts"] == expected["task_prompts"]
    assert actual["trial_logs"] == expected["trial_logs"]
    assert actual["state"] == expected["state"]


def test_declining_permission_returns_none(monkeypatch: pytest.MonkeyPatch) -> None:
    dspy.configure(lm=DummyLM({"": "yes"}))
    monkeypatch.setattr(builtins, "input", lambda prompt="": "n")
    trainset = [dspy.Example(question="q", answer="yes").with_inputs("question")] * 2
    result = MIPRO(metric=exact, num_candidates=2).compile(
        dspy.Predict("question -> answer"),
        trainset=trainset,
        num_trials=1,
        max_bootstrapped_demos=1,
        max_labeled_demos=1,
        eval_kwargs={},
    )
    assert result is None
    assert isinstance(BayesianSignatureOptimizer(metric=exact), MIPRO)
