"""Evaluate and BootstrapFewShot against the embedded server running the real SmolLM2 model.

Kept small: a few questions, short generations (6 requests in all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.evaluate import Evaluate, answer_exact_match
from tgispy.server._process import ServerHandle
from tgispy.teleprompt import BootstrapFewShot

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]

QUESTIONS = {"France": "Paris", "Italy": "Rome", "Japan": "Tokyo"}


@pytest.fixture(scope="module")
def server(model_server: ServerHandle) -> ServerHandle:
    """The session's shared real-model server (tests/conftest.py)."""
    return model_server


def client(server: ServerHandle) -> Any:
    return dspy.HFClientTGI(
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        port=server.port,
        url="http://127.0.0.1",
        cache=False,
        max_tokens=8,
    )


def examples() -> list[dspy.Example]:
    return [
        dspy.Example(question=f"What is the capital of {c}?", answer=a).with_inputs("question")
        for c, a in QUESTIONS.items()
    ]


def test_evaluate_scores_the_models_answers(server: ServerHandle) -> None:
    lm = client(server)
    dspy.configure(lm=lm)
    evaluate = Evaluate(devset=examples(), metric=answer_exact_match, num_threads=3)
    score, outputs = evaluate(dspy.Predict("question -> answer"), return_outputs=True)

    assert len(outputs) == 3 and len(lm.history) == 3
    answers = [pred.answer for _, pred, _ in outputs]
    assert all(isinstance(a, str) for a in answers)
    matches = [answer_exact_match(ex, pred) for ex, pred, _ in outputs]
    assert [s for *_, s in outputs] == matches
    assert score == round(100 * sum(matches) / 3, 2)
    assert {entry["replica"] for entry in lm.history} == {server.url}


def test_bootstrap_compiles_and_the_saved_program_sends_the_same_prompt(
    server: ServerHandle, tmp_path: Path
) -> None:
    lm = client(server)
    dspy.configure(lm=lm)
    trainset = examples()[:2]
    optimizer = BootstrapFewShot(metric=None, max_bootstrapped_demos=1, max_labeled_demos=2)
    compiled = optimizer.compile(dspy.Predict("question -> answer"), trainset=trainset)

    assert len(lm.history) == 1  # one teacher run was enough for the one augmented demo
    augmented, raw = compiled.demos
    assert augmented.augmented is True and augmented.question == trainset[0].question
    assert augmented.answer == lm.history[0]["response"]["choices"][0]["text"].strip()
    assert raw == trainset[1]

    question = "What is the capital of Japan?"
    compiled(question=question)
    prompt = lm.history[-1]["prompt"]
    assert prompt.endswith(
        "\n\n---\n\n"
        f"Question: {trainset[0].question}\nAnswer: {augmented.answer}\n\n---\n\n"
        f"Question: {trainset[1].question}\nAnswer: {trainset[1].answer}\n\n---\n\n"
        f"Question: {question}\nAnswer:"
    )

    path = tmp_path / "compiled.json"
    compiled.save(path)
    fresh = dspy.Predict("question -> answer")
    fresh.load(path)
    fresh(question=question)
    assert lm.history[-1]["prompt"].encode() == prompt.encode()
