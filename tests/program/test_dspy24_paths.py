"""DSPy 2.4's module paths exist under tgispy and name the same objects as the packages."""

from __future__ import annotations

import importlib

import pytest

import tgispy

# (path module, name, the object it must be)
PATHS = [
    ("tgispy.primitives.program", "Module", tgispy.Module),
    ("tgispy.primitives.program", "Program", tgispy.Module),
    ("tgispy.primitives.example", "Example", tgispy.Example),
    ("tgispy.primitives.prediction", "Prediction", tgispy.Prediction),
    ("tgispy.primitives.prediction", "Completions", tgispy.Completions),
    ("tgispy.primitives.module", "BaseModule", tgispy.primitives.BaseModule),
    ("tgispy.predict.predict", "Predict", tgispy.Predict),
    ("tgispy.predict.chain_of_thought", "ChainOfThought", tgispy.ChainOfThought),
    ("tgispy.predict.parameter", "Parameter", tgispy.predict.Parameter),
    ("tgispy.signatures.signature", "Signature", tgispy.Signature),
    ("tgispy.signatures.signature", "ensure_signature", tgispy.ensure_signature),
    ("tgispy.signatures.field", "InputField", tgispy.InputField),
    ("tgispy.signatures.field", "OutputField", tgispy.OutputField),
    ("tgispy.evaluate.evaluate", "Evaluate", tgispy.Evaluate),
    ("tgispy.teleprompt.bootstrap", "BootstrapFewShot", tgispy.BootstrapFewShot),
    ("tgispy.teleprompt.vanilla", "LabeledFewShot", tgispy.LabeledFewShot),
    (
        "tgispy.teleprompt.random_search",
        "BootstrapFewShotWithRandomSearch",
        tgispy.BootstrapFewShotWithRandomSearch,
    ),
    ("tgispy.predict.react", "ReAct", tgispy.ReAct),
    ("tgispy.retrieve.retrieve", "Retrieve", tgispy.Retrieve),
    ("tgispy.functional.functional", "TypedPredictor", tgispy.TypedPredictor),
    ("tgispy.primitives.assertions", "Assert", tgispy.Assert),
]

# Every module path of DSPy 2.4.17 that programs import from, present under tgispy.
MODULE_PATHS = [
    "evaluate.evaluate",
    "evaluate.metrics",
    *(
        f"teleprompt.{m}"
        for m in [
            "avatar_optimizer",
            "bootstrap",
            "copro_optimizer",
            "ensemble",
            "finetune",
            "knn_fewshot",
            "mipro_optimizer",
            "mipro_optimizer_v2",
            "random_search",
            "signature_opt",
            "signature_opt_bayesian",
            "teleprompt",
            "teleprompt_optuna",
            "vanilla",
        ]
    ),
    *(
        f"predict.{m}"
        for m in [
            "aggregation",
            "chain_of_thought",
            "chain_of_thought_with_hint",
            "knn",
            "multi_chain_comparison",
            "parameter",
            "predict",
            "program_of_thought",
            "react",
            "retry",
        ]
    ),
    *(
        f"primitives.{m}"
        for m in ["assertions", "example", "module", "prediction", "program", "python_interpreter"]
    ),
    "signatures.field",
    "signatures.signature",
    "retrieve.retrieve",
    "functional.functional",
    "utils.dummies",
]


@pytest.mark.parametrize("path", MODULE_PATHS)
def test_dspy_module_path_imports(path: str) -> None:
    module = importlib.import_module(f"tgispy.{path}")
    assert module.__all__ and all(getattr(module, name) is not None for name in module.__all__)


@pytest.mark.parametrize(("path", "name", "expected"), PATHS, ids=lambda v: str(v)[:40])
def test_dspy_module_path_exports_the_same_object(path: str, name: str, expected: object) -> None:
    module = importlib.import_module(path)
    assert getattr(module, name) is expected
    assert name in module.__all__


def test_module_has_dspy_metaclass() -> None:
    from tgispy.primitives.program import ProgramMeta

    assert type(tgispy.Module) is ProgramMeta
    assert isinstance(tgispy.ChainOfThought("q -> a"), tgispy.Module)


def test_set_attribute_by_name_follows_parameter_names() -> None:
    from tgispy.primitives.program import set_attribute_by_name

    class Program(tgispy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.steps = [tgispy.Predict("q -> a"), tgispy.Predict("q -> a")]
            self.table = {"x": tgispy.Predict("q -> a")}

    program = Program()
    names = [name for name, _ in program.named_predictors()]
    assert names == ["steps[0]", "steps[1]", "table['x']"]
    new = tgispy.Predict("q -> b")
    set_attribute_by_name(program, "steps[1]", new)
    set_attribute_by_name(program, "table['x']", new)
    assert program.steps[1] is new and program.table["x"] is new


def test_signature_to_template_renders_the_2_4_prompt() -> None:
    from tgispy.signatures.signature import signature_to_template

    template = signature_to_template(tgispy.Signature("question -> answer", "Answer it."))
    prompt = template.format([], {"question": "2+2?"})
    assert prompt == (
        "Answer it.\n\n---\n\nFollow the following format.\n\nQuestion: ${question}\n"
        "Answer: ${answer}\n\n---\n\nQuestion: 2+2?\nAnswer:"
    )


def test_old_fields() -> None:
    from tgispy.signatures.field import (
        OldInputField,
        OldOutputField,
        move_kwargs,
        new_to_old_field,
    )

    sig = tgispy.Signature("question -> answer")
    old = new_to_old_field(sig.fields["question"])
    assert isinstance(old, OldInputField)
    assert (old.prefix, old.desc) == ("Question:", "${question}")
    field = OldOutputField()
    field.finalize("final_answer", "Final Answer")
    assert field == OldOutputField(prefix="Final Answer:", desc="${final_answer}")
    assert move_kwargs(prefix="P:", description="d", default=1) == {
        "description": "d",
        "default": 1,
        "json_schema_extra": {"prefix": "P:", "desc": "d"},
    }


def test_import_tgispy_leaves_the_issue_16_extras_unloaded() -> None:
    import subprocess
    import sys

    lazy = [
        "tgispy.dsp",
        "tgispy.functional",
        "tgispy.retrieve",
        "tgispy.compat",
        "tgispy.primitives._sandbox",
        "tgispy.predict._program_of_thought",
    ]
    code = f"import sys, tgispy; print([m for m in {lazy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_update_signatures_swaps_prompts_inside_the_block() -> None:
    from tgispy.utils.dummies import DummyLM

    qa = tgispy.Signature("question -> answer")
    predict = tgispy.Predict(qa)
    lm = DummyLM(["a\nNote: n", "b"])
    tgispy.configure(lm=lm)
    with tgispy.update_signatures({qa: tgispy.Signature("question -> answer, note", "New.")}):
        predict(question="x")
    predict(question="y")
    first, second = (entry["prompt"] for entry in lm.history)
    assert first.startswith("New.\n") and "Note: ${note}" in first
    assert second.startswith("Given the fields `question`, produce the fields `answer`.")
    with (
        pytest.raises(ValueError, match="'answer' is missing"),
        tgispy.update_signatures({qa: tgispy.Signature("question -> reply")}),
    ):
        pass
