"""Replay programs recorded with DSPy 2.4.17 (``golden/dspy24_programs.py``) with tgispy.

Every prompt, the generation parameters of every request, and the result or error must match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.utils.dummies import DummyLM

from .golden.dspy24_programs import SCENARIOS, record

_RECORDED = json.loads((Path(__file__).parent / "golden" / "dspy24_programs.json").read_text())
_CASES: dict[str, dict[str, Any]] = _RECORDED["scenarios"]


def test_recording_is_dspy_2_4_17_and_covers_every_scenario() -> None:
    assert _RECORDED["recorded_with"]["dspy_version"] == "2.4.17"
    assert sorted(_CASES) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_prompts_and_results_as_dspy_2_4_17(name: str) -> None:
    expected = _CASES[name]
    actual = json.loads(json.dumps(record(dspy, DummyLM, name), default=repr))
    assert actual["prompts"] == expected["prompts"]
    assert actual["kwargs"] == expected["kwargs"]
    assert actual["error"] == expected["error"]
    assert actual["result"] == expected["result"]
