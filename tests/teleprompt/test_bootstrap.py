"""BootstrapFewShot and LabeledFewShot: DSPy 2.4's demos, prompts, rounds, errors, save / load.

The pinned prompts were produced by dspy-ai 2.4.17 on the same task, LM answers and settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.evaluate import answer_exact_match
from tgispy.teleprompt import BootstrapFewShot, LabeledFewShot
from tgispy.utils.dummies import DummyLM

from ._capitals import CapitalsLM, trainset

HEAD = (
    "Given the fields `question`, produce the fields `answer`.\n\n---\n\n"
    "Follow the following format.\n\n"
)
COT_FORMAT = (
    "Question: ${question}\nReasoning: Let's think step by step in order to "
    "${produce the answer}. We ...\nAnswer: ${answer}\n\n---\n\n"
)


def cot_demo(country: str, capital: str) -> str:
    return (
        f"Question: What is the capital of {country}?\nReasoning: Let's think step by step in "
        f"order to produce the answer. We know {country}.\nAnswer: {capital}\n\n---\n\n"
    )


def labeled(country: str, capital: str) -> str:
    return f"Question: What is the capital of {country}?\nAnswer: {capital}\n\n---\n\n"


# DSPy 2.4.17: the first 3 traces that pass the metric (France, Spain, Japan; Italy's answer is
# wrong) become augmented demos, then 2 of the not-bootstrapped examples fill up to 5.
COT_PROMPT = (
    HEAD
    + COT_FORMAT
    + cot_demo("France", "Paris")
    + cot_demo("Spain", "Madrid")
    + cot_demo("Japan", "Tokyo")
    + labeled("Chile", "Santiago")
    + labeled("Peru", "Lima")
    + "Question: What is the capital of Kenya?\nReasoning: Let's think step by step in order to"
)
PREDICT_PROMPT = (
    HEAD
    + "Question: ${question}\nAnswer: ${answer}\n\n---\n\n"
    + labeled("France", "Paris")
    + labeled("Spain", "Madrid")
    + labeled("Japan", "Tokyo")
    + labeled("Chile", "Santiago")
    + labeled("Peru", "Lima")
    + "Question: What is the capital of Kenya?\nAnswer:"
)


def compile_capitals(program: Any, **kwargs: Any) -> Any:
    optimizer = BootstrapFewShot(
        metric=answer_exact_match, max_bootstrapped_demos=3, max_labeled_demos=5, **kwargs
    )
    return optimizer.compile(program, trainset=trainset()[:6])


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: dspy.ChainOfThought("question -> answer"), COT_PROMPT),
        (lambda: dspy.Predict("question -> answer"), PREDICT_PROMPT),
    ],
)
def test_compiled_demo_blocks_match_dspy_24(make: Any, expected: str) -> None:
    lm = CapitalsLM()
    dspy.configure(lm=lm)
    student = make()
    compiled = compile_capitals(student)
    compiled(question="What is the capital of Kenya?")

    assert lm.history[-1]["prompt"] == expected
    assert compiled._compiled is True and student._compiled is False
    assert student.demos == []  # the student itself is untouched
    demos = compiled.demos
    assert [d.get("augmented", False) for d in demos] == [True, True, True, False, False]


def test_labeled_few_shot_samples_like_dspy_24() -> None:
    lm = CapitalsLM()
    dspy.configure(lm=lm)
    compiled = LabeledFewShot(k=3).compile(dspy.Predict("question -> answer"), trainset=trainset())
    compiled(question="What is the capital of Egypt?")
    assert lm.history[-1]["prompt"] == (
        HEAD
        + "Question: ${question}\nAnswer: ${answer}\n\n---\n\n"
        + labeled("Kenya", "Nairobi")
        + labeled("Egypt", "Cairo")
        + labeled("Japan", "Tokyo")
        + "Question: What is the capital of Egypt?\nAnswer:"
    )
    first = LabeledFewShot(k=2).compile(
        dspy.Predict("question -> answer"), trainset=trainset(), sample=False
    )
    assert first.demos == trainset()[:2]
    empty = LabeledFewShot().compile(dspy.Predict("question -> answer"), trainset=[])
    assert empty.demos == []


@pytest.mark.parametrize("num_threads", [None, 1, 3])
def test_concurrency_never_changes_the_demos_or_the_work(num_threads: int | None) -> None:
    lm = CapitalsLM(delay=0.01)
    dspy.configure(lm=lm)
    compiled = compile_capitals(dspy.ChainOfThought("question -> answer"), num_threads=num_threads)
    compiled(question="What is the capital of Kenya?")
    assert lm.history[-1]["prompt"] == COT_PROMPT
    # France, Italy (wrong), Spain, Japan: exactly the teacher runs a sequential pass makes.
    assert len(lm.history) == 4 + 1
    expected_peak = 1 if num_threads == 1 else 3  # never more than the 3 demos still needed
    assert lm.in_flight[1] == expected_peak


def test_an_ordered_script_keeps_bootstrapping_sequential() -> None:
    lm = DummyLM(["Paris", "Rome", "x", "y"])
    dspy.configure(lm=lm)
    optimizer = BootstrapFewShot(metric=answer_exact_match, max_labeled_demos=0)
    compiled = optimizer.compile(
        dspy.Predict("question -> answer"), trainset=trainset(["France", "Italy", "Spain"])
    )
    # In order: France gets "Paris" and Italy "Rome" (both correct), Spain "x" (wrong).
    assert [d.answer for d in compiled.demos] == ["Paris", "Rome"]


def test_later_rounds_sample_at_a_higher_temperature() -> None:
    lm = CapitalsLM()
    dspy.configure(lm=lm)
    optimizer = BootstrapFewShot(
        metric=answer_exact_match, max_bootstrapped_demos=8, max_labeled_demos=0, max_rounds=3
    )
    compiled = optimizer.compile(
        dspy.Predict("question -> answer"), trainset=trainset(["France", "Italy"])
    )
    # Italy fails in every round; France is bootstrapped in round 0 and not retried.
    assert lm.temperatures == [0.0, 0.0, 0.701, 0.702]
    assert [d.answer for d in compiled.demos] == ["Paris"]


def test_metric_threshold_and_metric_none() -> None:
    dspy.configure(lm=CapitalsLM())
    calls: list[Any] = []

    def graded(example: Any, pred: Any, trace: Any = None) -> float:
        calls.append(trace)
        return 0.9 if answer_exact_match(example, pred) else 0.4

    program = dspy.Predict("question -> answer")
    data = trainset(["France", "Italy", "Spain"])
    strict = BootstrapFewShot(metric=graded, metric_threshold=0.5, max_labeled_demos=0)
    assert [d.answer for d in strict.compile(program, trainset=data).demos] == ["Paris", "Madrid"]
    # The metric sees the trace: one (predictor, inputs, prediction) step per call.
    assert all(len(trace) == 1 for trace in calls)
    keep_all = BootstrapFewShot(metric=None, max_labeled_demos=0)
    assert [d.answer for d in keep_all.compile(program, trainset=data).demos] == [
        "Paris",
        "Milan",
        "Madrid",
    ]


def test_failed_teacher_runs_are_skipped_until_max_errors(caplog: pytest.LogCaptureFixture) -> None:
    dspy.configure(lm=CapitalsLM())

    class Flaky(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.answer = dspy.Predict("question -> answer")

        def forward(self, question: str) -> Any:
            if "Japan" in question or "Peru" in question:
                raise RuntimeError(f"cannot do {question}")
            return self.answer(question=question)

    optimizer = BootstrapFewShot(metric=answer_exact_match, max_labeled_demos=0, max_errors=2)
    compiled = optimizer.compile(Flaky(), trainset=trainset(["France", "Japan", "Spain"]))
    assert [d.answer for d in compiled.answer.demos] == ["Paris", "Madrid"]
    assert "Failed to run or to evaluate example" in caplog.text

    with pytest.raises(RuntimeError, match="cannot do") as info:
        optimizer.compile(Flaky(), trainset=trainset(["Japan", "France", "Peru", "Spain"]))
    assert "BootstrapFewShot stopped: 2 teacher runs failed" in "".join(info.value.__notes__)


def test_multi_predictor_traces_become_each_predictors_demos() -> None:
    lm = DummyLM({"Loud Answer:": "PARIS", "\nAnswer:": "Paris"})
    dspy.configure(lm=lm)

    class TwoStep(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.answer = dspy.Predict("question -> answer")
            self.shout = dspy.Predict("answer -> loud_answer")

        def forward(self, question: str) -> Any:
            answer = self.answer(question=question).answer
            return dspy.Prediction(answer=answer, loud=self.shout(answer=answer).loud_answer)

    optimizer = BootstrapFewShot(metric=answer_exact_match, max_labeled_demos=0, num_threads=2)
    compiled = optimizer.compile(TwoStep(), trainset=trainset(["France", "Italy"]))
    first = compiled.answer.demos
    second = compiled.shout.demos
    assert [(d.question, d.answer) for d in first] == [("What is the capital of France?", "Paris")]
    assert [(d.answer, d.loud_answer) for d in second] == [("Paris", "PARIS")]


def test_a_compiled_teacher_keeps_its_demos() -> None:
    dspy.configure(lm=CapitalsLM())
    teacher = LabeledFewShot(k=1).compile(
        dspy.Predict("question -> answer"), trainset=trainset(["Egypt"])
    )
    teacher._compiled = True
    optimizer = BootstrapFewShot(metric=answer_exact_match, max_bootstrapped_demos=1)
    compiled = optimizer.compile(
        dspy.Predict("question -> answer"), teacher=teacher, trainset=trainset(["France"])
    )
    assert [d.answer for d in compiled.demos] == ["Paris"]
    assert teacher.demos == trainset(["Egypt"])


def test_bad_setups_fail_before_any_lm_call() -> None:
    program = dspy.Predict("question -> answer")
    with pytest.raises(ConfigError, match="No LM is loaded"):
        BootstrapFewShot().compile(program, trainset=trainset())
    lm = CapitalsLM()
    dspy.configure(lm=lm)
    compiled = LabeledFewShot(k=1).compile(program, trainset=trainset())
    compiled._compiled = True
    with pytest.raises(ConfigError, match="already compiled"):
        BootstrapFewShot().compile(compiled, trainset=trainset())
    with pytest.raises(ConfigError, match="same signatures"):
        BootstrapFewShot().compile(
            program, teacher=dspy.Predict("question -> reply"), trainset=trainset()
        )
    with pytest.raises(ConfigError, match=r"not a dspy\.Example"):
        BootstrapFewShot().compile(program, trainset=[{"question": "q"}])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="max_rounds"):
        BootstrapFewShot(max_rounds=-1)
    assert len(lm.history) == 0


@pytest.mark.parametrize(
    "make",
    [lambda: dspy.ChainOfThought("question -> answer"), lambda: dspy.Predict("question -> answer")],
)
def test_a_saved_program_loads_into_a_fresh_one_with_identical_prompts(
    make: Any, tmp_path: Path
) -> None:
    lm = CapitalsLM()
    dspy.configure(lm=lm)
    compiled = compile_capitals(make())
    path = tmp_path / "compiled.json"
    compiled.save(path)

    fresh = make()
    fresh.load(path)
    for program in (compiled, fresh):
        program(question="What is the capital of Kenya?")
    before, after = lm.history[-2]["prompt"], lm.history[-1]["prompt"]
    assert before == after
    assert before.encode() == after.encode()
    state = json.loads(path.read_text())
    entry = state if "demos" in state else state["self"]  # a Predict saves its own state
    assert [d.get("augmented", False) for d in entry["demos"]] == [True] * 3 + [False] * 2
