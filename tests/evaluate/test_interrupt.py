"""Ctrl-C during Evaluate: the run stops promptly, reports and saves what finished.

Each scenario runs in a fresh interpreter that sends itself SIGINT once a few examples finished.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = """
import asyncio, os, signal, sys, threading, time
import tgispy as dspy

done = 0
lock = threading.Lock()

def finish():
    global done
    with lock:
        done += 1
        if done == 4:
            os.kill(os.getpid(), signal.SIGINT)

def sync_program(question):
    if question.endswith("slow"):
        time.sleep(60)  # an example still running at Ctrl-C must not hold the process
    finish()
    return dspy.Prediction(answer="x")

async def async_program(question):
    if question.endswith("slow"):
        await asyncio.sleep(60)
    finish()
    return dspy.Prediction(answer="x")

devset = [dspy.Example(question=f"q{i}" + (" slow" if i % 2 else ""), answer="x").with_inputs(
    "question") for i in range(40)]
program = async_program if sys.argv[1] == "async" else sync_program
evaluate = dspy.Evaluate(devset=devset, metric=lambda e, p: True, num_threads=4,
                         save_as_json=sys.argv[2])
evaluate(program)
print("not interrupted")
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_ctrl_c_stops_promptly_and_reports_what_finished(mode: str, tmp_path: Path) -> None:
    saved = tmp_path / "partial.json"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), mode, str(saved)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started

    assert proc.returncode != 0, proc.stdout
    assert "not interrupted" not in proc.stdout
    assert "KeyboardInterrupt" in proc.stderr
    assert "Evaluation interrupted: Average Metric: 4 / 4 (100.0%); 36 of 40 not run" in (
        proc.stderr
    )
    records = json.loads(saved.read_text())
    assert [r["question"] for r in records] == ["q0", "q2", "q4", "q6"]
    assert elapsed < 30  # the examples sleeping 60 s were left behind
