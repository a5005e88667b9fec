"""MIPRO (v1) and BayesianSignatureOptimizer scenarios: DSPy 2.4.17 is the oracle.

Recording (outside the test suite, in a virtualenv with ``pip install dspy-ai==2.4.17``)::

    python tests/teleprompt/golden/mipro1_dspy24.py > tests/teleprompt/golden/mipro1_dspy24.json
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import io
import json
import re
from typing import Any

from tests.teleprompt.golden.mipro_dspy24 import build_program, exact, saved_state

PROMPT_ANSWERS = {
    "I will also provide you with a few observations": "COMPLETE",
    "Given several examples from a dataset": "Observations: Short yes/no questions.",
    "Given a series of observations": "Summary: Yes/no questions.",
    "Answer: no": "Say NO-B.\nProposed Prefix For Output Field: Verdict:",
    "Keyword: ": "Decide YES-C.\nProposed Prefix For Output Field: Answer:",
    "Observations:": "Answer YES-A.\nProposed Prefix For Output Field: Answer:",
    "": "Reply YES-C.\nProposed Prefix For Output Field: Reply:",
}

TASK_ANSWERS = {
    "YES-A": "yes",
    "YES-C": "yes",
    "NO-B": "no",
    "Keyword: no": "no",
    "produce the fields `answer`.": "yes",
    "": "maybe",
}

SCENARIOS: list[dict[str, Any]] = [
    {
        "name": "data_and_examples",
        "program": "predict",
        "optimizer": "MIPRO",
        "num_candidates": 3,
        "compile": {
            "num_trials": 4,
            "max_bootstrapped_demos": 2,
            "max_labeled_demos": 1,
            "seed": 7,
        },
        "trainset": [[f"q{i}", "no" if i % 4 == 3 else "yes"] for i in range(8)],
    },
    {
        "name": "chain_zero_shot_no_data",
        "program": "chain",
        "optimizer": "MIPRO",
        "num_candidates": 3,
        "compile": {
            "num_trials": 3,
            "max_bootstrapped_demos": 0,
            "max_labeled_demos": 0,
            "view_data": False,
            "seed": 1,
        },
        "trainset": [[f"q{i}", "yes"] for i in range(5)],
    },
    {
        "name": "bayesian_data_only",
        "program": "predict",
        "optimizer": "BayesianSignatureOptimizer",
        "num_candidates": 3,
        "compile": {
            "optuna_trials_num": 3,
            "max_bootstrapped_demos": 1,
            "max_labeled_demos": 1,
            "view_examples": False,
            "seed": 5,
        },
        "trainset": [[f"q{i}", "yes"] for i in range(6)],
    },
]


def normalize_logs(trial_logs: dict[Any, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Trial logs without programs, with ``<id(predictor)>_`` keys numbered by first appearance."""
    ids: dict[str, str] = {}
    out = {}
    for number, log in trial_logs.items():
        entry = {}
        for key, value in log.items():
            if key == "program":
                continue
            match = re.match(r"(\d+)_(predictor_.*)", key)
            if match:
                index = ids.setdefault(match.group(1), str(len(ids)))
                key = f"{index}_{match.group(2)}"
            entry[key] = value
        out[str(number)] = entry
    return out


def run(dspy: Any, dummy_lm: Any, scenario: dict[str, Any], face: str = "sync") -> dict[str, Any]:
    prompt_lm = dummy_lm(dict(PROMPT_ANSWERS))
    task_lm = dummy_lm(dict(TASK_ANSWERS))
    dspy.settings.configure(lm=task_lm)
    trainset = [
        dspy.Example(question=q, answer=a).with_inputs("question") for q, a in scenario["trainset"]
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if scenario["optimizer"] == "MIPRO":
            optimizer = dspy.teleprompt.MIPRO(
                metric=exact, prompt_model=prompt_lm, num_candidates=scenario["num_candidates"]
            )
            options = {**scenario["compile"], "requires_permission_to_run": False}
            kwargs = {"trainset": trainset}
        else:
            optimizer = dspy.teleprompt.BayesianSignatureOptimizer(
                prompt_model=prompt_lm, metric=exact, n=scenario["num_candidates"]
            )
            options = dict(scenario["compile"])
            kwargs = {"devset": trainset}
        program = build_program(dspy, scenario["program"])
        eval_kwargs = {"num_threads": 1, "display_progress": False}
        if face == "async":
            best = asyncio.run(
                optimizer.acompile(
                    program,
                    trainset=trainset,
                    eval_kwargs=eval_kwargs,
                    **{
                        k if k != "optuna_trials_num" else "num_trials": v
                        for k, v in options.items()
                    },
                    **(
                        {"requires_permission_to_run": False}
                        if "optuna_trials_num" in options
                        else {}
                    ),
                )
            )
        else:
            best = optimizer.compile(program, eval_kwargs=eval_kwargs, **kwargs, **options)
    return {
        # The notices printed before any LM call (DSPy 2.4's DummyLM then prints every prompt).
        "stdout": out.getvalue().split("=== DummyLM ===")[0],
        "proposal_prompts": sorted(entry["prompt"] for entry in prompt_lm.history),
        "task_prompts": sorted(entry["prompt"] for entry in task_lm.history),
        "trial_logs": normalize_logs(best.trial_logs),
        "state": saved_state(best),
    }


def main() -> None:
    import dspy  # the oracle: dspy-ai==2.4.17
    import dspy.teleprompt
    from dspy.utils.dummies import DummyLM

    recorded = [{"scenario": sc, "expected": run(dspy, DummyLM, sc)} for sc in SCENARIOS]
    header = {"dspy_version": importlib.metadata.version("dspy-ai")}
    print(json.dumps({"recorded_with": header, "cases": recorded}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
