"""examples/mipro_compile.py against the real SmolLM2 model, with tiny settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

import tgispy as dspy
from tgispy.server._process import ServerHandle

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]
pytest.importorskip("optuna")

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mipro_compile.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mipro_compile_example", _EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mipro_example_compiles_against_the_model(
    model_server: ServerHandle, tmp_path: Path
) -> None:
    example = _load()
    saved = tmp_path / "compiled.json"
    result = example.run(
        model_server.url, candidates=2, trials=1, max_tokens=16, train=4, save=str(saved)
    )
    assert 0.0 <= result["before"] <= 100.0 and 0.0 <= result["after"] <= 100.0
    assert result["requests"] > 10  # summary, proposals, the default program and a trial
    state = json.loads(saved.read_text())
    assert state["self"]["extended_signature_instructions"] == result["instructions"]
    reloaded = dspy.ChainOfThought("question -> answer")
    reloaded.load(saved)
    assert reloaded.extended_signature.instructions == result["instructions"]
