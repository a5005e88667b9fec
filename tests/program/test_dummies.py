"""DummyLM: list mode, dict mode, follow_examples, history and get_convo (DSPy 2.4's)."""

from __future__ import annotations

import asyncio

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.lm import LM
from tgispy.utils.dummies import DummyLM


def test_list_mode_answers_in_order_then_runs_out() -> None:
    script = ["one", "two"]
    lm = DummyLM(script)
    assert isinstance(lm, LM)
    assert lm("p1") == ["one"]
    assert lm("p2", n=2) == ["two", "No more responses"]
    assert script == ["one", "two"]  # the caller's list is not consumed
    assert lm.answers == []


def test_dict_mode_matches_prompt_substrings() -> None:
    lm = DummyLM({"France": "Paris", "Italy": "Rome"})
    assert lm("capital of Italy?") == ["Rome"]
    assert lm("capital of Spain?") == ["No more responses"]


def test_history_and_get_convo() -> None:
    lm = DummyLM(["4"])
    dspy.configure(lm=lm)
    dspy.Predict("question -> answer")(question="2+2?")
    assert len(lm.history) == 1
    assert lm.history[0]["response"]["choices"] == [{"text": "4"}]
    assert lm.history[-1]["finish_reasons"] == ["simulated completion"]
    assert lm.get_convo(-1) == lm.history[-1]["prompt"] + " 4"
    assert lm.get_convo(0).endswith("Question: 2+2?\nAnswer: 4")
    assert lm.provider == "dummy" and lm.model == "dummy-model"


def test_follow_examples_answers_from_the_demos() -> None:
    lm = DummyLM(["fallback"], follow_examples=True)
    dspy.configure(lm=lm)
    predictor = dspy.Predict("question -> answer")
    predictor.demos = [
        dspy.Example(question="What is 1+1?", answer="2"),
        dspy.Example(question="What is 2+2?", answer="4"),
    ]
    assert predictor(question="What is 2+2?").answer == "4"
    # Without demos there is nothing to follow: the list answers.
    assert dspy.Predict("question -> answer")(question="x").answer == "fallback"


def test_follow_examples_escapes_the_prefix() -> None:
    lm = DummyLM([], follow_examples=True)
    prompt = "I\n---\nF\n---\nScore (0-1)?: 0.5\n---\nScore (0-1)?:"
    assert lm(prompt) == ["0.5"]


def test_inspect_history_prints_the_last_calls(capsys: pytest.CaptureFixture[str]) -> None:
    lm = DummyLM(["4"])
    dspy.configure(lm=lm)
    dspy.Predict("question -> answer")(question="2+2?")
    text = dspy.inspect_history(n=1)
    assert "Question: 2+2?\nAnswer:" in text and "4" in text
    assert text in capsys.readouterr().out


def test_inspect_history_without_an_lm_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="configure"):
        dspy.inspect_history()


def test_concurrent_list_answers_are_each_used_once() -> None:
    lm = DummyLM([str(i) for i in range(40)])

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(lm.acall(f"p{i}") for i in range(40)))

    answers = sorted(int(texts[0]) for texts in asyncio.run(main()))
    assert answers == list(range(40))
