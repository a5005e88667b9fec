"""Assertions beyond the recorded DSPy 2.4 programs: async face, copies, threads, errors."""

from __future__ import annotations

import asyncio
import copy
import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import tgispy as dspy
from tgispy.primitives.assertions import DSPyAssertionError, DSPySuggestionError, backtrack_state
from tgispy.utils.dummies import DummyLM


class OneWord(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generate_answer = dspy.Predict("question -> answer")

    def forward(self, question: str) -> Any:
        pred = self.generate_answer(question=question)
        dspy.Suggest(len(pred.answer.split()) == 1, "Answer in one word.", is_metric=True)
        return pred


class AsyncOneWord(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generate_answer = dspy.Predict("question -> answer")

    async def aforward(self, question: str) -> Any:
        pred = await self.generate_answer.acall(question=question)
        dspy.Suggest(len(pred.answer.split()) == 1, "Answer in one word.")
        return pred


def _retry_prompt_tail(question: str, past: str) -> str:
    return (
        f"Question: {question}\n\nPrevious Answer: {past}\n\n"
        "Instructions: Answer in one word.\n\nAnswer:"
    )


@pytest.mark.parametrize("program_cls", [OneWord, AsyncOneWord])
@pytest.mark.parametrize("face", ["sync", "async"])
def test_backtracking_on_both_faces(program_cls: type, face: str) -> None:
    lm = DummyLM(["two words", "one"])
    dspy.configure(lm=lm)
    program = program_cls().activate_assertions()
    if face == "sync":
        pred = program(question="Q?")
    else:
        pred = asyncio.run(program.acall(question="Q?"))
    assert pred.answer == "one"
    assert len(lm.history) == 2
    assert lm.history[1]["prompt"].endswith(_retry_prompt_tail("Q?", "two words"))
    assert dspy.settings.trace is None  # the handler's own trace did not leak


def test_a_deep_copy_backtracks_on_its_own_predictors() -> None:
    program = OneWord().activate_assertions()
    clone = copy.deepcopy(program)
    assert clone.forward.__self__ is clone
    assert clone.generate_answer is not program.generate_answer
    assert clone.generate_answer.module is not program.generate_answer.module
    lm = DummyLM(["two words", "one"])
    dspy.configure(lm=lm)
    assert clone(question="Q?").answer == "one"
    assert lm.history[1]["prompt"].endswith(_retry_prompt_tail("Q?", "two words"))


def test_threads_backtrack_independently() -> None:
    def run(i: int) -> tuple[str, list[str]]:
        lm = DummyLM([f"word {i}", f"w{i}"])
        with dspy.context(lm=lm):
            pred = program(question=f"Q{i}?")
        return pred.answer, [h["prompt"] for h in lm.history]

    program = OneWord().activate_assertions()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(16)))
    for i, (answer, prompts) in enumerate(results):
        assert answer == f"w{i}"
        assert prompts[1].endswith(_retry_prompt_tail(f"Q{i}?", f"word {i}"))


def test_metric_failures_are_counted_and_state_is_per_call() -> None:
    dspy.configure(lm=DummyLM(["two words", "one"]))
    assert backtrack_state() is None
    OneWord().activate_assertions()(question="Q?")
    assert dspy.settings.suggest_failures == 1
    assert dspy.settings.assert_failures == 0
    assert backtrack_state() is None


def test_max_backtracking_attempts_alias() -> None:
    lm = DummyLM(["a b", "c d", "e f", "g h"])
    dspy.configure(lm=lm)
    program = OneWord().activate_assertions(max_backtracking_attempts=3)
    assert program(question="Q?").answer == "g h"  # last try ignores the suggestion
    assert len(lm.history) == 4
    with pytest.raises(dspy.ConfigError, match="max_backtracks"):
        dspy.backtrack_handler(lambda: None, max_backtracks=-1)


def test_constraints_need_a_bool() -> None:
    with pytest.raises(dspy.ConfigError, match="bool"):
        dspy.Assert(1, "x")  # type: ignore[arg-type]


def test_errors_are_assertion_errors_in_the_tree_and_pickle() -> None:
    with pytest.raises(AssertionError) as info:
        dspy.Assert(False, "must hold")
    error = info.value
    assert isinstance(error, DSPyAssertionError) and isinstance(error, dspy.TgispyError)
    back = pickle.loads(pickle.dumps(error))
    assert (type(back), back.msg, back.id) == (DSPyAssertionError, "must hold", error.id)
    with pytest.raises(DSPySuggestionError, match="try"):
        dspy.Suggest(False, "try")
    with dspy.context(bypass_suggest=True):
        assert dspy.Suggest(False, "try").result is False


def test_mixed_retry_mapping_is_refused() -> None:
    program = OneWord()
    program.other = dspy.Retry(dspy.Predict("q -> a"))
    with pytest.raises(dspy.ConfigError, match="mixed"):
        dspy.assert_transform_module(program)
