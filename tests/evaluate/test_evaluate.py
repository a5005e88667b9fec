"""Evaluate: DSPy 2.4's return values, sync and async programs in parallel, failures, files."""

from __future__ import annotations

import asyncio
import csv
import json
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError, ValidationError
from tgispy.evaluate import (
    Evaluate,
    EvaluationError,
    FailedPrediction,
    answer_exact_match,
)
from tgispy.testing import Reply, ScriptedTGI
from tgispy.utils.dummies import DummyLM

CAPITALS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo"}


def devset(n: int = 4) -> list[dspy.Example]:
    items = list(CAPITALS.items())
    return [
        dspy.Example(question=f"Capital of {country}?", answer=capital).with_inputs("question")
        for country, capital in (items * (n // len(items) + 1))[:n]
    ]


def capitals_lm(wrong: tuple[str, ...] = ()) -> DummyLM:
    return DummyLM({c: ("Nope" if c in wrong else a) for c, a in CAPITALS.items()})


class SyncQA(dspy.Module):
    """A program with only `forward`: runs in worker threads."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = dspy.Predict("question -> answer")
        self.threads: set[int] = set()

    def forward(self, question: str) -> dspy.Prediction:
        self.threads.add(threading.get_ident())
        return self.answer(question=question)


def test_score_is_a_rounded_percentage_and_flags_shape_the_result() -> None:
    dspy.configure(lm=capitals_lm(wrong=("Italy",)))
    data = devset(3)
    evaluate = Evaluate(devset=data, metric=answer_exact_match, num_threads=2)
    program = dspy.Predict("question -> answer")

    assert evaluate(program) == 66.67
    score, scores = evaluate(program, return_all_scores=True)
    assert (score, scores) == (66.67, [True, False, True])
    score, outputs = evaluate(program, return_outputs=True)
    assert [(ex, pred.answer, s) for ex, pred, s in outputs] == [
        (data[0], "Paris", True),
        (data[1], "Nope", False),
        (data[2], "Madrid", True),
    ]
    score, outputs, scores = evaluate(program, return_outputs=True, return_all_scores=True)
    assert len(outputs) == 3 and scores == [True, False, True]


def test_float_metrics_and_call_arguments_override_the_constructor() -> None:
    dspy.configure(lm=capitals_lm())
    evaluate = Evaluate(devset=devset(2), metric=answer_exact_match)

    def half(example: Any, pred: Any) -> float:
        return 0.5

    assert evaluate(dspy.Predict("question -> answer"), metric=half) == 50.0
    assert evaluate(dspy.Predict("question -> answer"), devset=devset(1)) == 100.0
    assert (
        evaluate.last_result is not None
        and evaluate.last_result.metric_name == "answer_exact_match"
    )


def test_async_programs_run_as_coroutines_on_one_thread() -> None:
    in_flight = 0
    peak = 0
    threads: set[int] = set()
    release = asyncio.Event()

    async def program(question: str) -> dspy.Prediction:
        nonlocal in_flight, peak
        threads.add(threading.get_ident())
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 32:
            release.set()
        # Every example waits until 32 are in flight at once (or gives up after 5 s).
        await asyncio.wait_for(release.wait(), 5)
        in_flight -= 1
        return dspy.Prediction(answer=question)

    before = threading.active_count()
    evaluate = Evaluate(devset=devset(64), metric=lambda e, p: True, num_threads=32)
    assert evaluate(program) == 100.0
    assert peak == 32
    assert len(threads) == 1
    assert threading.active_count() <= before + 1  # no thread per example in flight


def test_modules_with_aforward_take_the_async_path() -> None:
    dspy.configure(lm=capitals_lm())
    calls: list[str] = []

    class AsyncQA(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.answer = dspy.ChainOfThought("question -> answer")

        async def aforward(self, question: str) -> dspy.Prediction:
            calls.append(threading.current_thread().name)
            return await self.answer.acall(question=question)

    evaluate = Evaluate(devset=devset(4), metric=lambda e, p: True, num_threads=4)
    assert evaluate(AsyncQA()) == 100.0
    assert len(set(calls)) == 1 and not calls[0].startswith("tgispy-eval")


def test_sync_programs_run_in_worker_threads_in_the_callers_context() -> None:
    dspy.configure(lm=capitals_lm(wrong=tuple(CAPITALS)))  # the global LM is always wrong
    program = SyncQA()
    evaluate = Evaluate(devset=devset(8), metric=answer_exact_match, num_threads=4)
    with dspy.context(lm=capitals_lm()):
        assert evaluate(program) == 100.0
    assert 1 < len(program.threads) <= 4
    assert threading.get_ident() not in program.threads
    assert evaluate(program) == 0.0  # outside the block: the global LM


async def test_the_async_face_runs_in_the_running_loop() -> None:
    dspy.configure(lm=capitals_lm(wrong=("Spain",)))
    evaluate = Evaluate(devset=devset(4), metric=answer_exact_match, num_threads=4)
    assert await evaluate.acall(dspy.ChainOfThought("question -> answer")) == 75.0
    assert await evaluate.acall(SyncQA()) == 75.0


def test_failures_are_recorded_scored_zero_and_kept_in_the_outputs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dspy.configure(lm=capitals_lm())

    class Flaky(SyncQA):
        def forward(self, question: str) -> dspy.Prediction:
            if "Italy" in question:
                raise ValueError("no Italian today")
            return super().forward(question)

    evaluate = Evaluate(devset=devset(4), metric=answer_exact_match, num_threads=2)
    score, outputs = evaluate(Flaky(), return_outputs=True)

    assert score == 75.0
    assert len(outputs) == 4
    _, failed, value = outputs[1]
    assert isinstance(failed, FailedPrediction) and not failed and value == 0.0
    assert (failed.error.type, failed.error.message) == ("ValueError", "no Italian today")
    assert evaluate.error_count == 1
    result = evaluate.last_result
    assert result is not None and result.failures == [failed.error]
    assert "Error for example 1 of the devset: ValueError: no Italian today" in caplog.text


def test_a_tgi_error_is_recorded_with_its_replica() -> None:
    script = [Reply.generate(" Paris")] + [
        Reply(422, {"error": "Input validation error: bad", "error_type": "validation"})
    ] * 2
    with ScriptedTGI(script) as server:
        lm = dspy.HFClientTGI(model="m", port=server.port, url="http://127.0.0.1", cache=False)
        dspy.configure(lm=lm)
        evaluate = Evaluate(devset=devset(3), metric=answer_exact_match, max_errors=None)
        score, outputs = evaluate(dspy.Predict("question -> answer"), return_outputs=True)
    assert score == 33.33
    errors = [pred.error for _, pred, _ in outputs[1:]]
    assert {(e.type, e.status, e.replica) for e in errors} == {
        ("ValidationError", 422, f"http://127.0.0.1:{server.port}")
    }
    assert errors[0].message == "Input validation error: bad"


def test_max_errors_stops_the_run_with_a_summary() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def program(question: str) -> dspy.Prediction:
        with lock:
            started.append(1)
        raise ValidationError("prompt too long", status=422, replica="http://r1:80")

    evaluate = Evaluate(devset=devset(40), metric=answer_exact_match, num_threads=2, max_errors=3)
    with pytest.raises(EvaluationError) as info:
        evaluate(program)
    err = info.value
    # The example in flight beside the third failure may finish (and fail) too.
    assert err.message.startswith(f"Evaluation stopped: {len(err.failures)} examples failed")
    assert "(max_errors=3)" in str(err)
    assert "ValidationError: prompt too long (status 422, replica http://r1:80)" in str(err)
    assert isinstance(err.__cause__, ValidationError)
    assert err.result is not None and err.result.stopped == "max_errors"
    assert len(err.failures) >= 3
    assert len(started) < 40  # no new example starts after the stop
    copy = pickle.loads(pickle.dumps(err))
    assert copy.failures == err.failures and copy.result is not None


async def test_max_errors_cancels_async_examples_in_flight() -> None:
    finished: list[int] = []

    async def program(question: str) -> dspy.Prediction:
        if "France" in question:
            raise ValueError("boom")
        await asyncio.sleep(10)
        finished.append(1)
        return dspy.Prediction(answer="x")

    evaluate = Evaluate(devset=devset(8), metric=lambda e, p: True, num_threads=4, max_errors=2)
    with pytest.raises(EvaluationError):
        await asyncio.wait_for(evaluate.acall(program), 5)
    assert finished == []


def test_bad_arguments_fail_before_any_lm_call() -> None:
    lm = capitals_lm()
    dspy.configure(lm=lm)
    program = dspy.Predict("question -> answer")
    with pytest.raises(ConfigError, match="needs a metric"):
        Evaluate(devset=devset(1))(program)
    with pytest.raises(ConfigError, match="empty"):
        Evaluate(devset=[], metric=answer_exact_match)(program)
    with pytest.raises(ConfigError, match=r"with_inputs\('question'\)"):
        Evaluate(devset=[dspy.Example(question="q")], metric=answer_exact_match)(program)
    with pytest.raises(ConfigError, match=r"not a dspy\.Example"):
        Evaluate(devset=[{"question": "q"}], metric=answer_exact_match)(program)  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="num_threads"):
        Evaluate(devset=devset(1), metric=answer_exact_match, num_threads=0)
    with pytest.raises(ConfigError, match="unexpected arguments"):
        Evaluate(devset=devset(1), metric=answer_exact_match, num_thread=2)
    assert len(lm.history) == 0


def test_progress_bar_shows_the_running_average(capsys: pytest.CaptureFixture[str]) -> None:
    dspy.configure(lm=capitals_lm(wrong=("Japan",)))
    Evaluate(devset=devset(4), metric=answer_exact_match, display_progress=True)(
        dspy.Predict("question -> answer")
    )
    err = capsys.readouterr().err
    assert "Average Metric: 3 / 4 (75.0%)" in err
    assert "4/4" in err


def test_display_table_prints_truncated_rows(capsys: pytest.CaptureFixture[str]) -> None:
    long_question = "Capital of France? " + " ".join(f"w{i}" for i in range(40))
    data = [dspy.Example(question=long_question, answer="Paris").with_inputs("question")]
    data += devset(3)[1:]
    dspy.configure(lm=capitals_lm(wrong=("Italy",)))
    Evaluate(devset=data, metric=answer_exact_match, display_table=2)(
        dspy.Predict("question -> answer")
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["question", "example_answer", "pred_answer", "answer_exact_match"]
    assert lines[1].startswith("0 Capital of France? w0 w1") and "..." in lines[1]
    assert "w39" not in lines[1]
    assert lines[1].endswith("✔️ [True]")
    assert lines[2].startswith("1 Capital of Italy?") and lines[2].endswith("False")
    assert lines[3] == "... 1 more rows not displayed ..."


def test_results_are_saved_as_json_and_csv(tmp_path: Path) -> None:
    dspy.configure(lm=capitals_lm(wrong=("Italy",)))

    def program(question: str) -> Any:
        if "Spain" in question:
            raise ValueError("no Spain")
        return dspy.Predict("question -> answer")(question=question)

    json_path, csv_path = tmp_path / "r.json", tmp_path / "r.csv"
    Evaluate(devset=devset(3), metric=answer_exact_match, save_as_json=json_path)(
        program, save_as_csv=csv_path
    )
    records = json.loads(json_path.read_text())
    assert records == [
        {
            "question": "Capital of France?",
            "example_answer": "Paris",
            "pred_answer": "Paris",
            "answer_exact_match": True,
        },
        {
            "question": "Capital of Italy?",
            "example_answer": "Rome",
            "pred_answer": "Nope",
            "answer_exact_match": False,
        },
        {
            "question": "Capital of Spain?",
            "example_answer": "Madrid",
            "pred_answer": None,
            "answer_exact_match": 0.0,
            "error": "ValueError: no Spain",
        },
    ]
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["pred_answer"] for r in rows] == ["Paris", "Nope", ""]
    assert [r["error"] for r in rows] == ["", "", "ValueError: no Spain"]
