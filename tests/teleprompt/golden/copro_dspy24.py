"""COPRO scenarios run by DSPy 2.4.17 (the oracle) and by tgispy: same LM answers, same prompts.

Recording (outside the test suite, in a virtualenv with ``pip install dspy-ai==2.4.17``)::

    python tests/teleprompt/golden/copro_dspy24.py > tests/teleprompt/golden/copro_dspy24.json

The prompt model answers from an ordered script (proposals are made one after the other); the
task model answers from a dict keyed by markers in the instruction, so the order in which
candidates are scored (concurrently in tgispy) does not change any answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import io
import json
import os
import tempfile
from typing import Any

SCENARIOS: list[dict[str, Any]] = [
    {
        "name": "predict",
        "program": "predict",
        "breadth": 3,
        "depth": 2,
        "track_stats": True,
        "proposals": [
            "Say YES-A to everything.\nProposed Prefix For Output Field: Verdict:",
            '"Answer NO-B."\nProposed Prefix For Output Field: "Answer:"',
            "Consider YES-C carefully.\nProposed Prefix For Output Field: Reply:",
            "Be brief, NO-D.\nProposed Prefix For Output Field: Answer:",
            "Say YES-A to everything.\nProposed Prefix For Output Field: Verdict:",
        ],
        "task": {"YES-A": "yes", "YES-C": "yes", "NO-B": "no", "NO-D": "no", "": "maybe"},
        "trainset": [["q1", "yes"], ["q2", "yes"], ["q3", "no"], ["q4", "yes"]],
    },
    {
        "name": "two_predictors",
        "program": "chain",
        "breadth": 2,
        "depth": 2,
        "track_stats": False,
        "proposals": [
            "Extract KW-GOOD keywords.\nProposed Prefix For Output Field: Keyword:",
            "Decide YES-A.\nProposed Prefix For Output Field: Answer:",
            "Extract KW-BAD.\nProposed Prefix For Output Field: Keyword:",
            "Extract KW-GOOD again.\nProposed Prefix For Output Field: Keyword:",
            "Decide NO-B.\nProposed Prefix For Output Field: Answer:",
            "Decide YES-C.\nProposed Prefix For Output Field: Final Answer:",
        ],
        "task": {
            "KW-GOOD": "sunny",
            "KW-BAD": "rainy",
            "YES-A": "yes",
            "YES-C": "yes",
            "NO-B": "no",
            "Keyword: rainy": "no",
            "": "maybe",
        },
        "trainset": [["q1", "yes"], ["q2", "no"], ["q3", "yes"]],
    },
    {
        "name": "chain_of_thought",
        "program": "cot",
        "breadth": 2,
        "depth": 1,
        "track_stats": True,
        "proposals": ["Think YES-A first.\nProposed Prefix For Output Field: Answer:"],
        "task": {"YES-A": "it is positive.\nAnswer: yes", "": "unclear.\nAnswer: maybe"},
        "trainset": [["q1", "yes"], ["q2", "yes"]],
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
    """What ``program.save(path)`` writes (the file the other library must load)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "program.json")
        with contextlib.redirect_stdout(io.StringIO()):  # DSPy 2.4's save prints
            program.save(path)
        with open(path, encoding="utf-8") as f:
            return json.load(f)  # type: ignore[no-any-return]


def run(dspy: Any, dummy_lm: Any, scenario: dict[str, Any], face: str = "sync") -> dict[str, Any]:
    """Compile the scenario's program with COPRO; return what the test compares."""
    prompt_lm = dummy_lm(list(scenario["proposals"]))
    task_lm = dummy_lm(dict(scenario["task"]))
    dspy.settings.configure(lm=task_lm)
    trainset = [
        dspy.Example(question=q, answer=a).with_inputs("question") for q, a in scenario["trainset"]
    ]
    optimizer = dspy.teleprompt.COPRO(
        prompt_model=prompt_lm,
        metric=exact,
        breadth=scenario["breadth"],
        depth=scenario["depth"],
        track_stats=scenario["track_stats"],
    )
    program = build_program(dspy, scenario["program"])
    eval_kwargs = {"num_threads": 1, "display_progress": False, "display_table": 0}
    with contextlib.redirect_stdout(io.StringIO()):  # DSPy's DummyLM prints every prompt
        if face == "async":
            best = asyncio.run(
                optimizer.acompile(program, trainset=trainset, eval_kwargs=eval_kwargs)
            )
        else:
            best = optimizer.compile(program, trainset=trainset, eval_kwargs=eval_kwargs)
    out: dict[str, Any] = {
        "proposal_prompts": [entry["prompt"] for entry in prompt_lm.history],
        "proposal_kwargs": [
            {k: v for k, v in entry.get("raw_kwargs", entry.get("kwargs")).items() if k != "n"}
            for entry in prompt_lm.history
        ],
        "task_prompts": sorted(entry["prompt"] for entry in task_lm.history),
        "candidates": [
            [c["score"], c["instruction"], c["prefix"], c["depth"]] for c in best.candidate_programs
        ],
        "total_calls": best.total_calls,
        "state": saved_state(best),
    }
    if scenario["track_stats"]:
        out["stats"] = [
            [best.results_best[k] for k in best.results_best],
            [best.results_latest[k] for k in best.results_latest],
        ]
        out["stats"] = json.loads(json.dumps(out["stats"], default=float))
    return out


def main() -> None:
    import dspy  # the oracle: dspy-ai==2.4.17
    import dspy.teleprompt
    from dspy.utils.dummies import DummyLM

    recorded = [{"scenario": sc, "expected": run(dspy, DummyLM, sc)} for sc in SCENARIOS]
    header = {"dspy_version": importlib.metadata.version("dspy-ai")}
    print(json.dumps({"recorded_with": header, "cases": recorded}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
