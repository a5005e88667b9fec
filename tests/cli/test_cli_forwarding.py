"""`tgispy serve-rm` and `tgispy run-dspy2` reach their own entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tgispy.cli import main


def test_serve_rm_forwards_its_arguments() -> None:
    assert main(["serve-rm", "--help"]) == 0


def test_serve_rm_reports_a_missing_corpus(tmp_path: Path) -> None:
    assert main(["serve-rm", str(tmp_path / "missing.jsonl")]) == 2


def test_run_dspy2_runs_an_unmodified_dspy_script(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(
        "import dspy\n"
        "from dspy.teleprompt import LabeledFewShot\n"
        "print(dspy.Predict.__module__, LabeledFewShot.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "tgispy.cli", "run-dspy2", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tgispy.predict", "LabeledFewShot"]
