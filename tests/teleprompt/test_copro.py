"""COPRO: DSPy 2.4.17's proposals, prompts, choices and saved files; concurrent scoring; Ctrl-C.

The expected values were recorded by running ``golden/copro_dspy24.py`` with dspy-ai 2.4.17.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.teleprompt import COPRO, SignatureOptimizer
from tgispy.utils.dummies import DummyLM

from ._capitals import CapitalsLM, trainset
from .golden.copro_dspy24 import SCENARIOS, build_program, exact, run

_RECORDED = json.loads((Path(__file__).parent / "golden" / "copro_dspy24.json").read_text())
_CASES = {case["scenario"]["name"]: case for case in _RECORDED["cases"]}


def test_recording_is_dspy_2_4_17_of_these_scenarios() -> None:
    assert _RECORDED["recorded_with"]["dspy_version"] == "2.4.17"
    assert [case["scenario"] for case in _RECORDED["cases"]] == json.loads(json.dumps(SCENARIOS))


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("name", list(_CASES))
def test_same_proposals_prompts_and_program_as_dspy_2_4_17(name: str, face: str) -> None:
    case = _CASES[name]
    actual = run(dspy, DummyLM, case["scenario"], face)
    expected = case["expected"]
    assert actual["proposal_prompts"] == expected["proposal_prompts"]
    assert actual["proposal_kwargs"] == expected["proposal_kwargs"]
    assert actual["task_prompts"] == expected["task_prompts"]
    assert actual["candidates"] == expected["candidates"]
    assert actual["total_calls"] == expected["total_calls"]
    # The saved file is the one DSPy 2.4.17 wrote for its best program (so each loads the other's).
    assert actual["state"] == expected["state"]
    if "stats" in expected:
        assert actual["stats"] == expected["stats"]


def test_a_file_saved_by_dspy_2_4_17_loads_into_tgispy(tmp_path: Path) -> None:
    path = tmp_path / "copro.json"
    path.write_text(json.dumps(_CASES["chain_of_thought"]["expected"]["state"]))
    program = build_program(dspy, "cot")
    program.load(path)
    assert program.extended_signature.instructions == "Think YES-A first."


class _SlowTask(DummyLM):
    """Answers like a dict DummyLM after a delay; counts calls in flight."""

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


def _proposals(count: int) -> list[str]:
    return [f"Instruction {i}.\nProposed Prefix For Output Field: Answer:" for i in range(count)]


def test_candidates_of_a_batch_are_scored_concurrently() -> None:
    task = _SlowTask({"": "yes"}, delay=0.05)
    dspy.configure(lm=task)
    examples = [
        dspy.Example(question=f"q{i}", answer="yes").with_inputs("question") for i in range(4)
    ]
    optimizer = COPRO(prompt_model=DummyLM(_proposals(5)), metric=exact, breadth=6, depth=1)
    best = optimizer.compile(
        dspy.Predict("question -> answer"), trainset=examples, eval_kwargs={"num_threads": 4}
    )
    assert best.total_calls == 6 and len(task.history) == 24
    assert task.in_flight[1] == 24  # 6 candidates x 4 examples at once
    limited = COPRO(
        prompt_model=DummyLM(_proposals(5)),
        metric=exact,
        breadth=6,
        depth=1,
        candidate_concurrency=2,
    )
    task.in_flight[1] = 0
    limited.compile(
        dspy.Predict("question -> answer"), trainset=examples, eval_kwargs={"num_threads": 4}
    )
    assert task.in_flight[1] == 8


def test_cancelling_keeps_the_best_program_so_far_and_sync_ctrl_c_returns_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lm = CapitalsLM(delay=0.02)
    dspy.configure(lm=lm)
    optimizer = COPRO(prompt_model=DummyLM(_proposals(50)), metric=exact, breadth=3, depth=20)

    async def cancel_midway() -> None:
        task = asyncio.create_task(
            optimizer.acompile(dspy.Predict("question -> answer"), trainset=trainset())
        )
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    assert optimizer.best.program is not None and optimizer.best.score is not None

    import signal
    import threading

    optimizer = COPRO(prompt_model=DummyLM(_proposals(50)), metric=exact, breadth=3, depth=20)
    timer = threading.Timer(0.5, lambda: signal.raise_signal(signal.SIGINT))
    timer.start()
    with caplog.at_level(logging.WARNING, logger="tgispy.teleprompt._search"):
        best = optimizer.compile(dspy.Predict("question -> answer"), trainset=trainset())
    timer.join()
    assert best is optimizer.best.program
    assert "COPRO interrupted: returning the best program so far" in caplog.text


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="Breadth must be greater than 1"):
        COPRO(breadth=1)
    with pytest.raises(ConfigError, match="candidate_concurrency"):
        COPRO(candidate_concurrency=0)
    with pytest.raises(ConfigError, match="needs a metric"):
        COPRO().compile(dspy.Predict("q -> a"), trainset=[])


def test_signature_optimizer_is_copro_with_devset(caplog: pytest.LogCaptureFixture) -> None:
    dspy.configure(lm=DummyLM({"": "yes"}))
    examples = [dspy.Example(question="q", answer="yes").with_inputs("question")]
    with caplog.at_level(logging.WARNING):
        optimizer = SignatureOptimizer(
            prompt_model=DummyLM(_proposals(2)), metric=exact, breadth=2, depth=1, verbose=True
        )
    assert "SignatureOptimizer has been deprecated" in caplog.text
    assert isinstance(optimizer, COPRO)
    best = optimizer.compile(dspy.Predict("question -> answer"), devset=examples, eval_kwargs={})
    assert best.total_calls == 2
