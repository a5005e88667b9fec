"""`tgispy run --shard I/N` splits the data exactly; `tgispy run merge` reports as one run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tgispy.evaluate._records import read_results
from tgispy.evaluate._run import merge_results, run_program
from tgispy.testing import Recorded, Reply, ScriptedTGI

N = 20


def answer(rec: Recorded) -> Reply:
    asked = rec.json["inputs"].rsplit("Question:", 1)[-1]
    number = int(asked.split("#", 1)[1].split("?", 1)[0])
    if number % 7 == 2:
        return Reply.error(422, "Input validation error: too long", "validation")
    return Reply.generate(" yes" if number % 3 else " no")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    program = tmp_path / "qa.py"
    program.write_text("import tgispy as dspy\nprogram = dspy.Predict('question -> answer')\n")
    data = tmp_path / "dev.jsonl"
    rows = [{"question": f"Is this #{i}?", "answer": "yes"} for i in range(N)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return program, data


def run(program: Path, data: Path, url: str, output: Path, **kwargs: str) -> str:
    out = io.StringIO()
    status = run_program(
        str(program),
        str(data),
        lm_url=[url],
        metric="answer_exact_match",
        num_threads=3,
        display_progress=False,
        cache=False,
        output=str(output),
        stdout=out,
        stderr=io.StringIO(),
        **kwargs,  # type: ignore[arg-type]
    )
    assert status == 0
    return out.getvalue()


def test_three_shards_cover_the_data_once_and_merge_to_the_single_run(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    program, data = setup
    with ScriptedTGI(answer) as server:
        single = run(program, data, server.url, tmp_path / "whole.jsonl")
        shards = [tmp_path / f"results-{i}.jsonl" for i in range(3)]
        for i, path in enumerate(shards):
            run(program, data, server.url, path, shard=f"{i}/3")
        posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 2 * N  # the single run, then the three shards together

    whole = read_results(tmp_path / "whole.jsonl").records
    per_shard = [read_results(path) for path in shards]
    shard_ids = [set(found.records) for found in per_shard]
    assert [len(ids) for ids in shard_ids] == [7, 7, 6]
    assert set.union(*shard_ids) == set(whole) and sum(map(len, shard_ids)) == N
    assert [found.header["shard"] for found in per_shard] == [[0, 3], [1, 3], [2, 3]]
    questions = [
        sorted(int(r["example"]["question"][9:-1]) for r in found.records.values())
        for found in per_shard
    ]
    assert questions[1] == [1, 4, 7, 10, 13, 16, 19]  # every third line, from the second

    out = io.StringIO()
    assert merge_results([str(p) for p in reversed(shards)], stdout=out) == 0
    merged = out.getvalue().splitlines()
    expected = single.splitlines()
    assert merged[0] == expected[0] == "Average Metric: 11 / 20 (55.0%); 3 failed"
    assert merged[1].split(" from ")[0] == expected[1].split(" in ")[0]

    cli = subprocess.run(
        [sys.executable, "-m", "tgispy.cli", "run", "merge", *map(str, shards)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.splitlines()[0] == expected[0]


def test_merge_reports_missing_shards_and_refuses_other_files(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    program, data = setup
    with ScriptedTGI(answer) as server:
        run(program, data, server.url, tmp_path / "r-0.jsonl", shard="0/2")
    out = io.StringIO()
    assert merge_results([str(tmp_path / "r-0.jsonl")], stdout=out) == 0
    # The other shard's half shows as not run.
    assert out.getvalue().splitlines()[0].endswith("; 10 of 20 not run")

    err = io.StringIO()
    assert merge_results([str(data)], stderr=err) == 2
    assert "without an 'id'" in err.getvalue()
    assert merge_results([str(tmp_path / "nope.jsonl")], stderr=err) == 2
    assert "not found" in err.getvalue()
