"""MIPROv2: DSPy 2.4.17's proposals, trials and program from the same LM answers and seed.

The expected values were recorded by running ``golden/mipro_dspy24.py`` with dspy-ai 2.4.17.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.teleprompt import MIPROv2
from tgispy.utils.dummies import DummyLM

from .golden.mipro_dspy24 import (
    PROMPT_ANSWERS,
    SCENARIOS,
    build_program,
    exact,
    permission_transcript,
    run,
)

pytest.importorskip("optuna")

_RECORDED = json.loads((Path(__file__).parent / "golden" / "mipro_dspy24.json").read_text())
_CASES = {case["scenario"]["name"]: case for case in _RECORDED["cases"]}


def test_recording_is_dspy_2_4_17_of_these_scenarios() -> None:
    assert _RECORDED["recorded_with"]["dspy_version"] == "2.4.17"
    assert [case["scenario"] for case in _RECORDED["cases"]] == json.loads(json.dumps(SCENARIOS))


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("name", list(_CASES))
def test_same_proposals_trials_and_program_as_dspy_2_4_17(name: str, face: str) -> None:
    case = _CASES[name]
    actual = run(dspy, DummyLM, case["scenario"], face)
    expected = case["expected"]
    assert actual["proposal_prompts"] == expected["proposal_prompts"]
    assert actual["task_prompts"] == expected["task_prompts"]
    assert actual["trial_logs"] == expected["trial_logs"]
    assert actual["score"] == expected["score"]
    assert actual["state"] == expected["state"]


@pytest.mark.parametrize("answer", ["n", "y"])
def test_requires_permission_to_run_prints_dspy_2_4_17_notice(
    answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dspy.configure(lm=DummyLM({"": "yes"}))
    if answer == "n":
        transcript, unchanged = permission_transcript(dspy, "n")
        assert transcript == _RECORDED["permission"]["stdout"]
        assert unchanged is _RECORDED["permission"]["returned_student"] is True
        return
    asked: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": asked.append(prompt) or "y")
    trainset = [
        dspy.Example(question=f"q{i}", answer="yes").with_inputs("question") for i in range(4)
    ]
    optimizer = MIPROv2(metric=exact, prompt_model=DummyLM(PROMPT_ANSWERS), num_candidates=2)
    best = optimizer.compile(
        dspy.Predict("question -> answer"), trainset=trainset, num_trials=1, minibatch=False
    )
    assert asked == ["Do you wish to continue? (y/n): "]
    assert best.score == 100.0


class _SlowDict(DummyLM):
    def __init__(self, answers: dict[str, str], delay: float) -> None:
        super().__init__(answers)
        self.delay = delay
        self.in_flight = [0, 0]

    async def acomplete(self, prompt: str, **kwargs: Any) -> Any:
        self.in_flight[0] += 1
        self.in_flight[1] = max(self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return await super().acomplete(prompt, **kwargs)
        finally:
            self.in_flight[0] -= 1


def test_demo_sets_and_proposals_run_concurrently() -> None:
    task = _SlowDict({"": "yes"}, delay=0.02)
    prompt = _SlowDict(PROMPT_ANSWERS, delay=0.02)
    dspy.configure(lm=task)
    trainset = [
        dspy.Example(question=f"q{i}", answer="yes").with_inputs("question") for i in range(12)
    ]
    optimizer = MIPROv2(
        metric=exact, prompt_model=prompt, task_model=task, num_candidates=6, num_threads=4
    )
    optimizer.compile(
        build_program(dspy, "predict"),
        trainset=trainset,
        num_trials=2,
        minibatch=False,
        requires_permission_to_run=False,
    )
    assert prompt.in_flight[1] >= 6  # the 6 instruction proposals at once
    assert task.in_flight[1] >= 8  # several demo sets bootstrapped at once


def test_without_optuna_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    dspy.configure(lm=DummyLM({"": "yes"}))
    trainset = [
        dspy.Example(question=f"q{i}", answer="yes").with_inputs("question") for i in range(4)
    ]
    with pytest.raises(ImportError, match=r"pip install 'tgispy\[optimizers\]'"):
        MIPROv2(metric=exact).compile(
            dspy.Predict("question -> answer"), trainset=trainset, requires_permission_to_run=False
        )


def test_cancelling_keeps_the_best_program_so_far() -> None:
    task = _SlowDict({"": "yes"}, delay=0.01)
    dspy.configure(lm=task)
    trainset = [
        dspy.Example(question=f"q{i}", answer="yes").with_inputs("question") for i in range(6)
    ]
    optimizer = MIPROv2(metric=exact, prompt_model=DummyLM(PROMPT_ANSWERS), num_candidates=3)

    async def cancel_during_trials() -> None:
        task_ = asyncio.create_task(
            optimizer.acompile(
                dspy.Predict("question -> answer"),
                trainset=trainset,
                num_trials=500,
                minibatch=False,
                requires_permission_to_run=False,
            )
        )
        while optimizer.best.program is None:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task_.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task_

    asyncio.run(cancel_during_trials())
    assert optimizer.best.score == 100.0
    assert optimizer.best.program.predictors()  # a program the caller can use
