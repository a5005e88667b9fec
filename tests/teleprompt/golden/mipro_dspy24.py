"""MIPROv2 scenarios run by DSPy 2.4.17 (the oracle) and by tgispy: same LM answers and seed.

Recording (outside the test suite, in a virtualenv with ``pip install dspy-ai==2.4.17``)::

    python tests/teleprompt/golden/mipro_dspy24.py > tests/teleprompt/golden/mipro_dspy24.json

Both LMs answer from dicts keyed by text in the prompt, so the order of the calls (concurrent in
tgispy) does not change any answer; prompts are compared as sorted lists.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib.metadata
import io
import json
import os
import tempfile
from typing import Any

PROMPT_ANSWERS = {
    "I will also provide you with a few observations": "COMPLETE",
    "Given several examples from a dataset": "Observations: Short yes/no questions.",
    "Given a series of observations": "Summary: Yes/no questions about q's.",
    "Please describe what type of task": "It answers yes/no questions.",
    "Please describe the purpose of one": "It decides the answer.",
    "Keep the instruction clear": "PROPOSED INSTRUCTION: Answer YES-A briefly.",
    "very informative": "Explain NO-B in detail.",
    "high stakes": '"Lives depend on YES-C."',
    "persona": "You are a judge: YES-A.",
    "be creative when": "Be creative, NO-B.",
    "": "Think YES-C.",
}

TASK_ANSWERS = {
    "YES-A": "yes",
    "YES-C": "yes",
    "NO-B": "no",
    "Keyword: no": "no",
    "": "maybe",
}

SCENARIOS: list[dict[str, Any]] = [
    {
        "name": "predict_minibatch",
        "program": "predict",
        "num_candidates": 4,
        "compile": {
            "num_trials": 4,
            "max_bootstrapped_demos": 2,
            "max_labeled_demos": 2,
            "minibatch_size": 3,
            "minibatch_full_eval_steps": 2,
            "view_data_batch_size": 3,
            "seed": 9,
        },
        "trainset": [[f"q{i}", "no" if i % 4 == 3 else "yes"] for i in range(10)],
    },
    {
        "name": "chain_full_eval",
        "program": "chain",
        "num_candidates": 3,
        "compile": {
            "num_trials": 3,
            "max_bootstrapped_demos": 1,
            "max_labeled_demos": 1,
            "minibatch": False,
            "seed": 3,
        },
        "trainset": [[f"q{i}", "no" if i % 3 == 0 else "yes"] for i in range(6)],
    },
    {
        "name": "cot_zero_shot",
        "program": "cot",
        "num_candidates": 3,
        "compile": {
            "num_trials": 2,
            "max_bootstrapped_demos": 0,
            "max_labeled_demos": 0,
            "minibatch": False,
            "seed": 1,
            "program_aware_proposer": False,
        },
        "trainset": [[f"q{i}", "yes"] for i in range(4)],
    },
]


def exact(example: Any, pred: Any, trace: Any = None) -> bool:
    return bool(example.answer == pred.answer)


def build_program(dspy: Any, kind: str) -> Any:
    if kind == "predict":
        return dspy.Predict("question -> answer")
    if kind == "cot":
        return dspy.ChainOfThought("question -> answer")

    class Chain(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.find = dspy.Predict("question -> keyword")
            self.decide = dspy.Predict("keyword -> answer")

        def forward(self, question: str) -> Any:
            return self.decide(keyword=self.find(question=question).keyword)

    return Chain()


def saved_state(program: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "program.json")
        with contextlib.redirect_stdout(io.StringIO()):  # DSPy 2.4's save prints
            program.save(path)
        with open(path, encoding="utf-8") as f:
            return json.load(f)  # type: ignore[no-any-return]


def _cot_answers(answers: dict[str, str]) -> dict[str, str]:
    return {k: f"it is so.\nAnswer: {v}" for k, v in answers.items()}


def run(dspy: Any, dummy_lm: Any, scenario: dict[str, Any], face: str = "sync") -> dict[str, Any]:
    """Compile the scenario's program with MIPROv2; return what the test compares."""
    prompt_lm = dummy_lm(dict(PROMPT_ANSWERS))
    task = _cot_answers(TASK_ANSWERS) if scenario["program"] == "cot" else TASK_ANSWERS
    task_lm = dummy_lm(dict(task))
    dspy.settings.configure(lm=task_lm)
    trainset = [
        dspy.Example(question=q, answer=a).with_inputs("question") for q, a in scenario["trainset"]
    ]
    optimizer = dspy.teleprompt.MIPROv2(
        metric=exact,
        prompt_model=prompt_lm,
        task_model=task_lm,
        num_candidates=scenario["num_candidates"],
        num_threads=1,
    )
    program = build_program(dspy, scenario["program"])
    options = {**scenario["compile"], "requires_permission_to_run": False}
    with contextlib.redirect_stdout(io.StringIO()):
        if face == "async":
            best = asyncio.run(optimizer.acompile(program, trainset=trainset, **options))
        else:
            best = optimizer.compile(program, trainset=trainset, **options)
    logs = {
        str(number): {k: v for k, v in log.items() if k != "program"}
        for number, log in best.trial_logs.items()
    }
    return {
        "proposal_prompts": sorted(entry["prompt"] for entry in prompt_lm.history),
        "task_prompts": sorted(entry["prompt"] for entry in task_lm.history),
        "trial_logs": logs,
        "score": best.score,
        "state": saved_state(best),
    }


def permission_transcript(dspy: Any, answer: str) -> tuple[str, bool]:
    """What ``requires_permission_to_run`` prints, and whether the student came back unchanged."""
    trainset = [
        dspy.Example(question=f"q{i}", answer="yes").with_inputs("question") for i in range(40)
    ]
    optimizer = dspy.teleprompt.MIPROv2(metric=exact, num_candidates=5)
    program = dspy.Predict("question -> answer")
    out = io.StringIO()
    original_input = builtins.input
    builtins.input = lambda prompt="": (out.write(prompt), answer)[1]
    try:
        with contextlib.redirect_stdout(out):
            result = optimizer.compile(program, trainset=trainset, num_trials=10)
    finally:
        builtins.input = original_input
    return out.getvalue(), result is program


def main() -> None:
    import dspy  # the oracle: dspy-ai==2.4.17
    import dspy.teleprompt
    from dspy.utils.dummies import DummyLM

    recorded = [{"scenario": sc, "expected": run(dspy, DummyLM, sc)} for sc in SCENARIOS]
    transcript, unchanged = permission_transcript(dspy, "n")
    header = {"dspy_version": importlib.metadata.version("dspy-ai")}
    print(
        json.dumps(
            {
                "recorded_with": header,
                "cases": recorded,
                "permission": {"stdout": transcript, "returned_student": unchanged},
            },
            ensure_ascii=False,
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
