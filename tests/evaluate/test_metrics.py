"""DSPy 2.4's metrics; expected values were produced by dspy-ai 2.4.17 on the same inputs."""

from __future__ import annotations

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.evaluate import (
    EM,
    F1,
    answer_exact_match,
    answer_match,
    answer_passage_match,
    normalize_text,
    passage_match,
)
from tgispy.evaluate._metrics import dpr_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Eiffel Tower!", "eiffel tower"),
        ("An apple a day", "apple day"),
        # NFD splits the accents off, and \b sees the marks as word boundaries (as DSPy did).
        ("Théâtre of the absurd", "\u0301 \u0302tre of absurd"),
        ("a-b the_c", "ab thec"),
        ("«the» end", "« » end"),
    ],
)
def test_normalize_text_matches_dspy(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("prediction", "answer", "f1"),
    [
        ("Paris, France", "Paris", 2 / 3),
        ("the cat sat", "a cat sat down", 0.8),
        ("", "x", 0),
        ("New York City", "new york", 0.8),
    ],
)
def test_f1_matches_dspy(prediction: str, answer: str, f1: float) -> None:
    assert F1(prediction, [answer]) == pytest.approx(f1)
    assert EM(prediction, [answer]) is False


def test_exact_match_normalizes_and_takes_any_answer() -> None:
    assert EM("The Paris.", ["paris"]) is True
    assert answer_match("Paris, France", ["Paris"], frac=0.5) is True
    assert answer_match("Paris, France", ["Paris"], frac=0.7) is False
    example = dspy.Example(question="q", answer=["4", "four"])
    assert answer_exact_match(example, dspy.Prediction(answer="Four!")) is True
    assert answer_exact_match(example, dspy.Prediction(answer="5")) is False
    assert answer_exact_match(dspy.Example(answer="4"), dspy.Prediction(answer=" 4 ")) is True


@pytest.mark.parametrize(
    ("passages", "answers", "expected"),
    [
        (["Paris is the capital of France."], ["paris"], True),
        (["Parisian food"], ["Paris"], False),
        (["Café au lait"], ["cafe"], False),
        (["x", "The answer is 42."], ["42"], True),
        (["The answer is 420."], ["42"], False),
        (["New-York is big"], ["new york"], False),
    ],
)
def test_passage_match_matches_dspy(
    passages: list[str], answers: list[str], expected: bool
) -> None:
    assert passage_match(passages, answers) is expected


def test_answer_passage_match_reads_the_context() -> None:
    example = dspy.Example(answer="Paris")
    assert answer_passage_match(example, dspy.Prediction(context=["Paris is big."])) is True
    assert answer_passage_match(example, dspy.Prediction(context=["Rome is big."])) is False


def test_dpr_tokens_split_letters_digits_and_symbols() -> None:
    assert dpr_tokens("Hello, World 42!") == ["hello", ",", "world", "42", "!"]


def test_bad_answers_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="string or a list"):
        answer_exact_match(dspy.Example(answer=4), dspy.Prediction(answer="4"))
    with pytest.raises(ConfigError, match="non-empty list"):
        EM("x", [])
