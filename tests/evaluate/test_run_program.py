"""`tgispy run`'s implementation: a program file over a JSONL dataset against a TGI server."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from tgispy.evaluate._run import run_program
from tgispy.testing import Recorded, Reply, ScriptedTGI

CAPITALS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid"}


def answer(rec: Recorded) -> Reply:
    query = rec.json["inputs"].rsplit("Question:", 1)[-1]
    if "Atlantis" in query:
        return Reply.error(422, "Input validation error: no such place", "validation")
    for country, capital in CAPITALS.items():
        if country in query:
            return Reply.generate(" Rome" if country == "Spain" else f" {capital}")
    return Reply.generate(" ?")


@pytest.fixture
def server() -> ScriptedTGI:
    with ScriptedTGI(answer) as s:
        yield s


def write_data(path: Path, countries: list[str]) -> Path:
    lines = [
        json.dumps({"question": f"Capital of {c}?", "answer": CAPITALS.get(c, "-")})
        for c in countries
    ]
    path.write_text("\n".join(lines) + "\n\n")
    return path


def write_program(path: Path, body: str) -> Path:
    path.write_text("import tgispy as dspy\n" + body)
    return path


def test_runs_scores_and_writes_one_line_per_example(tmp_path: Path, server: ScriptedTGI) -> None:
    program = write_program(tmp_path / "qa.py", "program = dspy.Predict('question -> answer')\n")
    data = write_data(tmp_path / "dev.jsonl", ["France", "Italy", "Spain", "Atlantis"])
    out_path = tmp_path / "out.jsonl"
    stdout = io.StringIO()

    status = run_program(
        str(program),
        str(data),
        lm_url=[server.url],
        metric="answer_exact_match",
        num_threads=4,
        output=str(out_path),
        display_progress=False,
        stdout=stdout,
        cache=False,
    )

    assert status == 0
    assert stdout.getvalue().startswith("Average Metric: 2 / 4 (50.0%); 1 failed\n")
    assert re.search(r"score \(answer_exact_match\): 50.0 over 4 examples", stdout.getvalue())
    lines = [json.loads(line) for line in out_path.read_text().splitlines()]
    header, rows = lines[0], sorted(lines[1:-1], key=lambda r: r["index"])
    assert lines[-1]["tgispy_summary"]["program_errors"] == 1
    assert header["metric"] == "answer_exact_match" and header["total"] == 4
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "program_error"]
    assert all(r["latency_s"] >= 0 and len(r["id"]) == 16 for r in rows)
    assert [r["prediction"] and r["prediction"]["answer"] for r in rows[:3]] == [
        "Paris",
        "Rome",
        "Rome",
    ]
    assert [r["score"] for r in rows] == [True, True, False, 0.0]
    assert rows[3]["error"] == {
        "type": "ValidationError",
        "message": "Input validation error: no such place",
        "replica": server.url,
        "status": 422,
        "kind": "program",
    }
    # Only the input field went into the prompts.
    prompts = [r.json["inputs"] for r in server.requests if r.method == "POST"]
    assert len(prompts) == 4 and not any("Answer: Paris" in p for p in prompts)


def test_metric_and_inputs_from_the_program_file(tmp_path: Path, server: ScriptedTGI) -> None:
    program = write_program(
        tmp_path / "qa.py",
        "class QA(dspy.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.cot = dspy.Predict('question -> answer')\n"
        "    def forward(self, question):\n"
        "        return self.cot(question=question)\n"
        "program = QA\n"
        "inputs = ['question']\n"
        "def metric(example, pred):\n"
        "    return len(pred.answer) == 4\n",
    )
    data = write_data(tmp_path / "dev.jsonl", ["France", "Italy"])
    stdout = io.StringIO()
    status = run_program(
        str(program), str(data), lm_url=[server.url], display_progress=False, stdout=stdout
    )
    assert status == 0
    assert "Average Metric: 1 / 2 (50.0%)" in stdout.getvalue()
    assert "score (metric): 50.0" in stdout.getvalue()


def test_without_a_metric_it_counts_completed_examples(tmp_path: Path, server: ScriptedTGI) -> None:
    program = write_program(tmp_path / "qa.py", "program = dspy.Predict('question -> answer')\n")
    data = write_data(tmp_path / "dev.jsonl", ["France", "Atlantis", "Atlantis"])
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run_program(
        str(program),
        str(data),
        lm_url=[server.url],
        max_errors=2,
        num_threads=1,
        display_progress=False,
        stdout=stdout,
        stderr=stderr,
    )
    assert status == 1  # stopped at max_errors
    assert "2 examples failed (max_errors=2)" in stderr.getvalue()
    assert stdout.getvalue().startswith("Average Metric: 1 / 3 (33.3%); 2 failed")
    assert "score (completed)" in stdout.getvalue()


@pytest.mark.parametrize(
    ("program_body", "data_text", "kwargs", "message"),
    [
        ("x = 1\n", '{"question": "q"}\n', {}, "defines no `program`"),
        (
            "program = dspy.Predict('question -> answer')\n",
            "{not json\n",
            {},
            "dev.jsonl:1: not JSON",
        ),
        ("program = dspy.Predict('question -> answer')\n", "", {}, "has no examples"),
        (
            "program = dspy.Predict('question -> answer')\n",
            '{"q": "x"}\n',
            {},
            "pass --inputs question",
        ),
        (
            "program = dspy.Predict('question -> answer')\n",
            '{"question": "x"}\n',
            {"metric": "no_such_metric"},
            "no metric 'no_such_metric'",
        ),
        ("raise RuntimeError('broken file')\n", '{"question": "x"}\n', {}, "broken file"),
        (
            "program = dspy.Predict('question -> answer')\n",
            '{"question": "x"}\n',
            {"shard": "3/3"},
            "--shard 3/3: need N >= 1 and 0 <= I < N",
        ),
        (
            "program = dspy.Predict('question -> answer')\n",
            '{"question": "x"}\n',
            {"shard": "1/2"},
            "shard 1/2 of",
        ),
        (
            "program = dspy.Predict('question -> answer')\n",
            '{"question": "x"}\n',
            {"resume": True},
            "--resume continues a results file: pass --output",
        ),
    ],
)
def test_bad_files_and_arguments_exit_2_before_any_request(
    tmp_path: Path,
    server: ScriptedTGI,
    program_body: str,
    data_text: str,
    kwargs: dict[str, str],
    message: str,
) -> None:
    program = write_program(tmp_path / "qa.py", program_body)
    data = tmp_path / "dev.jsonl"
    data.write_text(data_text)
    stderr = io.StringIO()
    status = run_program(
        str(program), str(data), lm_url=[server.url], stderr=stderr, stdout=io.StringIO(), **kwargs
    )
    assert status == 2
    assert message in stderr.getvalue()
    assert not [r for r in server.requests if r.method == "POST"]


def test_an_existing_results_file_is_never_overwritten(tmp_path: Path, server: ScriptedTGI) -> None:
    program = write_program(tmp_path / "qa.py", "program = dspy.Predict('question -> answer')\n")
    data = write_data(tmp_path / "dev.jsonl", ["France", "Italy"])
    out_path = tmp_path / "out.jsonl"
    common = {"lm_url": [server.url], "display_progress": False, "stdout": io.StringIO()}
    assert run_program(str(program), str(data), output=str(out_path), **common) == 0
    before = out_path.read_text()
    stderr = io.StringIO()
    assert run_program(str(program), str(data), output=str(out_path), stderr=stderr, **common) == 2
    assert "already holds 2 results; pass resume=True (tgispy run --resume)" in stderr.getvalue()
    assert out_path.read_text() == before
    posts = len(server.requests)
    stdout = io.StringIO()
    common["stdout"] = stdout
    assert run_program(str(program), str(data), output=str(out_path), resume=True, **common) == 0
    assert len(server.requests) == posts  # everything was done already
    assert "resumed: 2 examples came from the results file" in stdout.getvalue()
