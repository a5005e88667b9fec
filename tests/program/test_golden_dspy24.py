"""Replay scenarios recorded with DSPy 2.4.17: tgispy must send the same prompts and parse alike.

See ``golden/dspy24.py`` for how the scenarios were generated and recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.utils.dummies import DummyLM

from .golden.dspy24 import generate, run

_RECORDED = json.loads((Path(__file__).parent / "golden" / "dspy24_scenarios.json").read_text())
_CASES: list[dict[str, Any]] = _RECORDED["cases"]


def test_recording_is_dspy_2_4_17_and_reproducible_from_its_seed() -> None:
    assert _RECORDED["recorded_with"]["dspy_version"] == "2.4.17"
    regenerated = generate(_RECORDED["recorded_with"]["seed"], len(_CASES))
    assert [case["scenario"] for case in _CASES] == json.loads(json.dumps(regenerated))


def test_recording_covers_the_interesting_paths() -> None:
    expected = [case["expected"] for case in _CASES]
    continued = [e for e in expected if len(e["prompts"]) > 1]
    failed = [e for e in expected if e["error"]]
    sampled = [e for e in expected if len(next(iter(e.get("completions", {"": []}).values()))) > 1]
    with_demos = [c for c in _CASES if c["scenario"]["demos"]]
    assert len(continued) > 50 and len(failed) >= 1 and len(sampled) >= 3 and len(with_demos) > 50


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("index", range(len(_CASES)))
def test_same_prompts_kwargs_and_predictions_as_dspy_2_4_17(index: int, face: str) -> None:
    case = _CASES[index]
    actual = run(dspy, DummyLM, case["scenario"], face)
    expected = case["expected"]
    assert actual["prompts"] == expected["prompts"]
    assert actual["kwargs"] == expected["kwargs"]
    assert (actual["error"] is None) == (expected["error"] is None)
    if expected["error"] is None:
        assert actual["pred"] == expected["pred"]
        assert actual["completions"] == expected["completions"]
