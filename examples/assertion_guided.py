"""Assertion-guided generation: dspy.Suggest asks for a one-word answer; on failure the program is
re-run with the past answer and the feedback in the prompt (DSPy 2.4's backtracking).

usage: python examples/assertion_guided.py [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import tgispy as dspy

try:
    from examples._server import lm, tgi_url
except ImportError:  # run as a script from examples/
    from _server import lm, tgi_url  # type: ignore[no-redef]


class ShortQA(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.answer = dspy.ChainOfThought("question -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        pred = self.answer(question=question)
        dspy.Suggest(len(pred.answer.split()) <= 2, "Answer with one or two words, no sentence.")
        return pred


def run(url: str) -> dict[str, Any]:
    """Answer one question with backtracking; return the answer and the prompts' retry markers."""
    client = lm(url, max_tokens=40)
    with dspy.context(lm=client):
        program = ShortQA().activate_assertions(max_backtracks=2)
        pred = program(question="What is the capital of France?")
    prompts = [entry["prompt"] for entry in client.history]
    return {
        "answer": pred.answer,
        "calls": len(prompts),
        "retried_with_feedback": any("Instructions: Answer with one or two" in p for p in prompts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running TGI server (default: start tgispy serve)")
    args = parser.parse_args()
    with tgi_url(args.url) as url:
        print(json.dumps(run(url), indent=2))


if __name__ == "__main__":
    main()
