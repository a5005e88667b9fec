"""Evaluate(results=...): lines written as examples finish, resume, infra failures, retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError, ConnectError, ParseError
from tgispy.evaluate import Evaluate, EvaluationResult, answer_exact_match
from tgispy.evaluate._records import example_ids, read_results


def devset(n: int) -> list[dspy.Example]:
    return [
        dspy.Example(question=f"q{i}", answer=str(i % 3)).with_inputs("question") for i in range(n)
    ]


class Program:
    """A sync program answering ``i % 2`` for ``q{i}``; some questions fail, as scripted."""

    def __init__(
        self, infra: set[str] | None = None, parse: set[str] | None = None, on_call: Any = None
    ) -> None:
        self.calls: list[str] = []
        self.infra = infra if infra is not None else set()
        self.parse = set(parse or ())
        self.on_call = on_call

    def __call__(self, question: str) -> dspy.Prediction:
        self.calls.append(question)
        if self.on_call is not None:
            self.on_call(question)
        if question in self.infra:
            raise ConnectError("connection refused", replica="http://127.0.0.1:9")
        if question in self.parse:
            raise ParseError("no `answer` field in the completion")
        return dspy.Prediction(answer=str(int(question[1:]) % 2))


class Crash(BaseException):
    """The process dying mid-run (not an example's failure: Evaluate does not catch it)."""


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_finished_example_is_on_disk_before_the_next_one_is_scored(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    seen: list[int] = []

    def metric(example: dspy.Example, prediction: Any) -> bool:
        # Lines on disk while this example is being scored: every example finished before it.
        seen.append(len(path.read_text().splitlines()) - 1)
        return answer_exact_match(example, prediction)

    data = devset(6)
    evaluate = Evaluate(devset=data, metric=metric, results=path, max_errors=None)
    score = evaluate(Program(parse={"q4"}))

    assert seen == [0, 1, 2, 3, 5]  # q4 fails before its metric runs
    assert score == 33.33  # q0, q1 right
    header, *rows, summary = lines(path)
    assert summary["tgispy_summary"]["score"] == 33.33
    assert header["tgispy_results"] == 1 and header["metric"] == "metric" and header["total"] == 6
    assert [r["index"] for r in rows] == list(range(6))
    assert [r["id"] for r in rows] == example_ids(data)
    assert rows[4]["status"] == "program_error" and rows[4]["score"] == 0.0
    assert rows[4]["error"]["kind"] == "program" and rows[4]["prediction"] is None
    assert rows[0]["prediction"] == {"answer": "0"} and rows[0]["example"] == {
        "question": "q0",
        "answer": "0",
    }


def test_an_existing_results_file_needs_resume(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    Evaluate(devset=devset(2), metric=answer_exact_match, results=path)(Program())
    before = path.read_text()
    with pytest.raises(ConfigError, match="already holds 2 results; pass resume=True"):
        Evaluate(devset=devset(2), metric=answer_exact_match, results=path)(Program())
    assert path.read_text() == before
    with pytest.raises(ConfigError, match="written with the metric 'answer_exact_match'"):
        Evaluate(devset=devset(2), metric=lambda e, p: 1, results=path, resume=True)(Program())
    with pytest.raises(ConfigError, match="needs the results file"):
        Evaluate(devset=devset(2), metric=answer_exact_match, resume=True)
    with pytest.raises(ConfigError, match="retry_infra_failures must be an int"):
        Evaluate(devset=devset(2), metric=answer_exact_match, retry_infra_failures=-1)


def test_resume_skips_done_examples_reruns_infra_failures_and_reports_the_same(
    tmp_path: Path,
) -> None:
    data = devset(9)
    reference = Evaluate(devset=data, metric=answer_exact_match, max_errors=None)
    expected = reference(Program(parse={"q5"}), return_outputs=True)
    expected_result = reference.last_result
    assert expected_result is not None

    # First run: stopped after 4 examples (Ctrl-C, a crash...), q2 got no answer from the fleet.
    path = tmp_path / "results.jsonl"

    def stop_after_four(question: str) -> None:
        if question == "q4":
            raise Crash

    first = Program(infra={"q2"}, parse={"q5"}, on_call=stop_after_four)
    evaluate = Evaluate(devset=data, metric=answer_exact_match, results=path, max_errors=None)
    with pytest.raises(BaseExceptionGroup) as crashed:
        evaluate(first)
    assert crashed.group_contains(Crash)
    assert [r["status"] for r in read_results(path).records.values()] == [
        "ok",
        "ok",
        "infra_error",
        "ok",
    ]

    second = Program(parse={"q5"})
    resumed = Evaluate(
        devset=data, metric=answer_exact_match, results=path, resume=True, max_errors=None
    )
    got = resumed(second, return_outputs=True)

    assert second.calls == ["q2", "q4", "q5", "q6", "q7", "q8"]  # q0, q1, q3 were done
    assert got[0] == expected[0]
    assert [(e, dict(p), s) for e, p, s in got[1]] == [(e, dict(p), s) for e, p, s in expected[1]]
    result = resumed.last_result
    assert result is not None and result.resumed == 3
    assert result.summary() == expected_result.summary()
    final = read_results(path)
    assert len(final.records) == 9 and final.lines == 10  # q2's retry supersedes its failure
    assert final.records[example_ids(data)[2]]["status"] == "ok"
    assert len(final.headers) == 2


def test_infra_failures_score_zero_but_are_reported_apart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = devset(10)
    path = tmp_path / "results.jsonl"
    program = Program(infra={"q1", "q3"}, parse={"q4"})
    evaluate = Evaluate(devset=data, metric=answer_exact_match, results=path, max_errors=None)

    score = evaluate(program)

    result = evaluate.last_result
    assert isinstance(result, EvaluationResult)
    # As DSPy 2.4 scores it: 10 examples, q0 q6 q7 right (q1 got no answer, q4 did not parse).
    assert score == 30.0 and result.ncorrect == 3
    assert (result.program_errors, result.infra_errors, result.answered) == (1, 2, 8)
    assert result.answered_score == 37.5
    assert result.summary() == (
        "Average Metric: 3 / 10 (30.0%); 1 failed; 2 infra errors (no answer from the fleet): "
        "3 / 8 answered (37.5%)"
    )
    assert "2 examples failed for infrastructure reasons" in caplog.text
    found = read_results(path)
    assert found.summaries == [
        {
            "score": 30.0,
            "answered_score": 37.5,
            "finished": 10,
            "total": 10,
            "answered": 8,
            "program_errors": 1,
            "infra_errors": 2,
            "resumed": 0,
            "stopped": None,
            "elapsed_s": found.summaries[0]["elapsed_s"],
        }
    ]
    statuses = [r["status"] for r in found.records.values()]
    assert statuses.count("infra_error") == 2 and statuses.count("program_error") == 1
    assert "infrastructure error for example 1" in caplog.text


def test_retry_infra_failures_reruns_only_them_at_the_end(tmp_path: Path) -> None:
    data = devset(6)
    path = tmp_path / "results.jsonl"
    down = {"q1", "q4"}

    def fleet_back_after_main_pass(question: str) -> None:
        if question == "q5":
            down.clear()  # the replica is back for the retry round

    program = Program(infra=down, on_call=fleet_back_after_main_pass)
    evaluate = Evaluate(
        devset=data,
        metric=answer_exact_match,
        results=path,
        max_errors=None,
        retry_infra_failures=2,
        display_progress=True,
    )
    assert evaluate(program) == 33.33  # q0, q1 right, as without the outage
    assert program.calls == ["q0", "q1", "q2", "q3", "q4", "q5", "q1", "q4"]  # one round did it
    result = evaluate.last_result
    assert result is not None and result.infra_errors == 0 and result.finished == 6
    final = read_results(path)
    assert final.lines == 8 and {r["status"] for r in final.records.values()} == {"ok"}


def test_retries_stop_after_the_rounds_given(tmp_path: Path) -> None:
    program = Program(infra={"q0"})
    evaluate = Evaluate(
        devset=devset(2), metric=answer_exact_match, max_errors=None, retry_infra_failures=2
    )
    assert evaluate(program) == 50.0
    assert program.calls == ["q0", "q1", "q0", "q0"]
    assert evaluate.last_result is not None and evaluate.last_result.infra_errors == 1


def test_one_progress_bar_shows_rate_eta_error_kinds_and_the_running_score(
    capsys: pytest.CaptureFixture[str],
) -> None:
    evaluate = Evaluate(
        devset=devset(4), metric=answer_exact_match, max_errors=None, display_progress=True
    )
    evaluate(Program(infra={"q2"}, parse={"q3"}))
    final = capsys.readouterr().err.split("\r")[-1]
    assert final.startswith("Average Metric: 2 / 4 (50.0%): 100%")
    assert "4/4 [" in final and "ex/s" in final and "<00:00" in final  # done, ETA, rate
    assert "answered 3, program errors 1, infra errors 1, score over answered 66.7%" in final
