"""BootstrapFewShotWithRandomSearch: DSPy 2.4's candidates, scores and best program."""

from __future__ import annotations

from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.evaluate import answer_exact_match
from tgispy.teleprompt import BootstrapFewShotWithRandomSearch, BootstrapRS

from ._capitals import CapitalsLM, trainset


def test_candidates_are_scored_and_sorted_as_in_dspy_24() -> None:
    lm = CapitalsLM()
    dspy.configure(lm=lm)
    data = trainset()
    optimizer = BootstrapFewShotWithRandomSearch(
        metric=answer_exact_match,
        max_bootstrapped_demos=3,
        max_labeled_demos=4,
        num_candidate_programs=3,
        num_threads=2,
    )
    best = optimizer.compile(
        dspy.ChainOfThought("question -> answer"), trainset=data[:6], valset=data[4:]
    )
    # dspy-ai 2.4.17 on the same task: every candidate scores 75 (Peru is always wrong).
    assert [(score, seed) for score, _, seed, _ in best.candidate_programs] == [
        (75.0, -3),
        (75.0, -2),
        (75.0, -1),
        (75.0, 0),
        (75.0, 1),
        (75.0, 2),
    ]
    assert best is best.candidate_programs[0][3]  # the first best (zero-shot) is kept
    assert best.candidate_programs[0][1] == [False, True, True, True]
    # Seed 0's candidate shuffled the training set and drew its demo budget from Random(0).
    seed0 = best.candidate_programs[3][3]
    assert seed0._compiled is True and 1 <= len(seed0.demos) <= 4


def test_stop_at_score_and_restrict() -> None:
    dspy.configure(lm=CapitalsLM())
    data = trainset(["France", "Spain", "Japan"])

    def metric(example: Any, pred: Any, trace: Any = None) -> bool:
        return bool(answer_exact_match(example, pred))

    optimizer = BootstrapRS(metric=metric, num_candidate_programs=5, stop_at_score=100.0)
    best = optimizer.compile(dspy.Predict("question -> answer"), trainset=data)
    assert [seed for _, _, seed, _ in best.candidate_programs] == [-3]

    only = BootstrapFewShotWithRandomSearch(metric=metric, num_candidate_programs=2)
    best = only.compile(dspy.Predict("question -> answer"), trainset=data, restrict=[-2, 1])
    assert sorted(seed for _, _, seed, _ in best.candidate_programs) == [-2, 1]
    with pytest.raises(ConfigError, match="selected no candidate"):
        only.compile(dspy.Predict("question -> answer"), trainset=data, restrict=[99])


def test_bootstrap_rs_is_an_alias_and_public() -> None:
    assert BootstrapRS is BootstrapFewShotWithRandomSearch
    assert dspy.BootstrapRS is BootstrapRS
    assert dspy.Evaluate is dspy.evaluate.Evaluate
    with pytest.raises(ConfigError, match="needs a metric"):
        BootstrapRS(metric=None)  # type: ignore[arg-type]
