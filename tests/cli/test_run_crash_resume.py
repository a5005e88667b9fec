"""`tgispy run` killed with SIGKILL mid-run, then `--resume`: nothing lost, nothing sent twice.

The program talks to a ScriptedTGI on 127.0.0.1 that records every prompt it receives, so the
test counts, server-side, which examples the resumed run sent again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tgispy.evaluate._records import example_ids, read_results
from tgispy.primitives import Example
from tgispy.testing import Recorded, Reply, ScriptedTGI

N = 40
TGISPY = [sys.executable, "-m", "tgispy.cli"]


def question(i: int) -> str:
    return f"What is {i} + {i}?"


def answer(rec: Recorded) -> Reply:
    asked = rec.json["inputs"].rsplit("Question:", 1)[-1]
    number = int(asked.split("What is ", 1)[1].split(" ", 1)[0])
    if number % 13 == 5:
        reply = Reply.error(422, "Input validation error: too long", "validation")
    else:
        wrong = number % 4 == 3
        reply = Reply.generate(f" {2 * number + (1 if wrong else 0)}")
    return Reply(reply.status, reply.body, reply.headers, delay=0.03)


def asked_questions(server: ScriptedTGI) -> list[str]:
    out = []
    for rec in list(server.requests):
        if rec.method == "POST":
            text = rec.json["inputs"].rsplit("Question:", 1)[-1]
            out.append(text.split("\n", 1)[0].strip())
    return out


def settle(server: ScriptedTGI) -> None:
    """Wait until the server has received nothing new for 0.3 s (at most 5 s)."""
    count, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(server.requests) != count:
            count, quiet_since = len(server.requests), time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:
            return
        time.sleep(0.02)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    program = tmp_path / "qa.py"
    program.write_text("import tgispy as dspy\nprogram = dspy.Predict('question -> answer')\n")
    data = tmp_path / "dev.jsonl"
    rows = [{"question": question(i), "answer": str(2 * i)} for i in range(N)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return program, data


def command(program: Path, data: Path, url: str, output: Path, *extra: str) -> list[str]:
    return [
        *TGISPY,
        "run",
        str(program),
        str(data),
        "--lm-url",
        url,
        "--metric",
        "answer_exact_match",
        "--num-threads",
        "2",
        "--no-progress",
        "--no-cache",
        "--output",
        str(output),
        *extra,
    ]


def report(stdout: str) -> list[str]:
    """The report lines that do not depend on timing."""
    lines = stdout.splitlines()
    return [lines[0], lines[1].split(" in ", 1)[0]]


def outcomes(path: Path) -> dict[str, tuple[object, ...]]:
    return {
        example_id: (r["status"], r["score"], r["prediction"], r["example"])
        for example_id, r in read_results(path).records.items()
    }


def test_sigkill_then_resume_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    program, data = files
    ids = example_ids(
        [Example(question=question(i), answer=str(2 * i)).with_inputs("question") for i in range(N)]
    )
    with ScriptedTGI(answer) as reference_server:
        whole = tmp_path / "whole.jsonl"
        uninterrupted = subprocess.run(
            command(program, data, reference_server.url, whole),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    results = tmp_path / "results.jsonl"
    with ScriptedTGI(answer) as server:
        proc = subprocess.Popen(
            command(program, data, server.url, results),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if results.exists() and len(results.read_bytes().splitlines()) > 12:
                    break
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:  # pragma: no cover - only when the kill above failed
                proc.kill()
                proc.wait(10)
        settle(server)  # requests the killed run had in flight reach the server
        sent_before = asked_questions(server)
        done = read_results(results).records
        assert 12 <= len(done) < N  # killed mid-run: some done, some not
        done_questions = {r["example"]["question"] for r in done.values()}

        resumed = subprocess.run(
            [*command(program, data, server.url, results), "--resume"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stderr
        sent_after = asked_questions(server)[len(sent_before) :]

    # No finished example was sent again; every other one was sent by the resumed run.
    assert done_questions.isdisjoint(sent_after)
    assert sorted(done_questions | set(sent_after)) == sorted(question(i) for i in range(N))
    assert len(sent_after) == N - len(done)
    # Every example is in the file exactly once, and the outcomes are the uninterrupted run's.
    final = read_results(results)
    assert final.lines == N and sorted(final.records) == sorted(ids)
    assert outcomes(results) == outcomes(whole)
    assert report(resumed.stdout) == report(uninterrupted.stdout)
    assert report(uninterrupted.stdout)[0] == "Average Metric: 28 / 40 (70.0%); 3 failed"
    assert f"resumed: {len(done)} examples came from the results file" in resumed.stdout
