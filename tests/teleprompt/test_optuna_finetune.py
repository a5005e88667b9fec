"""BootstrapFewShotWithOptuna (optuna extra) and BootstrapFinetune (data written, no training)."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

import tgispy as dspy
from tgispy.evaluate import answer_exact_match
from tgispy.teleprompt import (
    BootstrapFewShotWithOptuna,
    BootstrapFinetune,
    FinetuneOutOfScopeError,
)
from tgispy.utils.dummies import DummyLM

from ._capitals import CapitalsLM, trainset

ANSWERS = {
    "France?\nReasoning": "produce the answer. We know.\nAnswer: Paris",
    "Peru?\nReasoning": "produce the answer. We know.\nAnswer: Lima",
    "France?\nAnswer:": "Paris",
    "Peru?\nAnswer:": "Lima",
}


class _Two(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cot = dspy.ChainOfThought("question -> answer")
        self.pred = dspy.Predict("question -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        self.pred(question=question)
        return self.cot(question=question)  # type: ignore[no-any-return]


def _train() -> list[dspy.Example]:
    return [
        dspy.Example(question=f"Capital of {c}?", answer=a).with_inputs("question")
        for c, a in [("France", "Paris"), ("Peru", "Lima")]
    ]


COT_ROWS = [
    {
        "prompt": f"Question: Capital of {c}?\nReasoning: Let's think step by step in order to "
        "produce the answer. We know.\nAnswer:",
        "completion": a,
    }
    for c, a in [("France", "Paris"), ("Peru", "Lima")]
]
PRED_ROWS = [
    {"prompt": f"Question: Capital of {c}?\nAnswer:", "completion": a}
    for c, a in [("France", "Paris"), ("Peru", "Lima")]
]


def _read(path: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_finetune_writes_dspy_2_4_17_pairs_and_chat_files_then_refuses_to_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSP_NOTEBOOK_CACHEDIR", str(tmp_path))
    dspy.configure(lm=DummyLM(ANSWERS))
    with pytest.raises(FinetuneOutOfScopeError) as info:
        BootstrapFinetune(multitask=False).compile(_Two(), trainset=_train())
    paths = info.value.paths
    # The rows dspy-ai 2.4.17 wrote for the same program, LM answers and trainset.
    assert _read(paths["cot"]["completion"]) == COT_ROWS
    assert _read(paths["pred"]["completion"]) == PRED_ROWS
    assert Path(paths["cot"]["completion"]).parent == tmp_path / "compiler"
    chat = _read(paths["pred"]["chat"])
    assert chat[0] == {
        "messages": [
            {"role": "user", "content": "Question: Capital of France?\nAnswer:"},
            {"role": "assistant", "content": "Paris"},
        ]
    }
    message = str(info.value)
    assert paths["cot"]["completion"] in message and "out of tgispy's scope" in message
    assert pickle.loads(pickle.dumps(info.value)).paths == paths

    with pytest.raises(FinetuneOutOfScopeError) as info:
        BootstrapFinetune().compile(_Two(), trainset=_train(), path_prefix=str(tmp_path / "x"))
    rows = _read(info.value.paths["all"]["completion"])
    # dspy-ai 2.4.17's multitask order (shuffled with random.Random(0)).
    assert rows == [PRED_ROWS[0], COT_ROWS[0], COT_ROWS[1], PRED_ROWS[1]]


def test_optuna_picks_one_bootstrapped_demo_per_predictor() -> None:
    pytest.importorskip("optuna")
    dspy.configure(lm=CapitalsLM())
    optimizer = BootstrapFewShotWithOptuna(
        answer_exact_match, num_candidate_programs=4, num_threads=4, max_labeled_demos=0
    )
    best = optimizer.compile(dspy.Predict("question -> answer"), max_demos=3, trainset=trainset())
    assert len(best.demos) == 1
    assert best.demos[0] in [dict(d) for d in optimizer.compiled_teleprompter.demos]
    assert optimizer.best.score is not None and optimizer.best.score >= 75.0


def test_optuna_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'tgispy\[optimizers\]'"):
        BootstrapFewShotWithOptuna(answer_exact_match)
