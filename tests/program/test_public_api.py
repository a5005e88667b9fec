"""The public surface: DSPy 2.4's names under `import tgispy as dspy`, lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tgispy
import tgispy as dspy

DSPY_NAMES = [
    "Signature",
    "InputField",
    "OutputField",
    "Predict",
    "ChainOfThought",
    "Module",
    "Example",
    "Prediction",
    "Completions",
    "configure",
    "context",
    "settings",
    "inspect_history",
    "HFClientTGI",
    "LM",
    "Evaluate",
    "LabeledFewShot",
    "BootstrapFewShot",
    "BootstrapFewShotWithRandomSearch",
]


@pytest.mark.parametrize("name", DSPY_NAMES)
def test_dspy_names_are_importable(name: str) -> None:
    assert getattr(dspy, name) is not None


def test_public_names_are_pinned() -> None:
    assert sorted(tgispy.__all__) == sorted(
        [
            "LM",
            "BootstrapFewShot",
            "BootstrapFewShotWithRandomSearch",
            "BootstrapRS",
            "ChainOfThought",
            "Completions",
            "ConfigError",
            "Evaluate",
            "Example",
            "HFClientTGI",
            "InputField",
            "LabeledFewShot",
            "Module",
            "OutputField",
            "ParseError",
            "Predict",
            "Prediction",
            "Program",
            "Signature",
            "TGIError",
            "TgispyError",
            "__version__",
            "configure",
            "context",
            "ensure_signature",
            "infer_prefix",
            "inspect_history",
            "make_signature",
            "settings",
        ]
    )


def test_hfclienttgi_is_the_tgi_client_loaded_on_first_use() -> None:
    from tgispy.lm._tgi import HFClientTGI

    assert dspy.HFClientTGI is HFClientTGI
    assert issubclass(dspy.HFClientTGI, dspy.LM)


def test_dummy_lm_path_and_unknown_names() -> None:
    from tgispy.utils.dummies import DummyLM

    assert dspy.utils.dummies.DummyLM is DummyLM
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = dspy.NoSuchThing
    assert "HFClientTGI" in dir(dspy) and "Evaluate" in dir(dspy)


def test_configure_and_context_are_the_settings_methods() -> None:
    assert dspy.configure.__func__ is dspy.settings.configure.__func__
    assert dspy.context.__func__ is dspy.settings.context.__func__


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, tgispy as dspy\n"
        "dspy.ChainOfThought('question -> answer')\n"
        "heavy = ['aiohttp', 'diskcache', 'jsonschema', 'pydantic', 'tqdm', 'tgispy.lm._tgi']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
