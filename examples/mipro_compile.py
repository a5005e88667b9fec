"""Compile a ChainOfThought QA program with MIPROv2 and compare scores before / after.

Runs against a TGI server: pass --url for a running one (real TGI or `tgispy serve`), or let the
script start the embedded server (`tgispy serve`, SmolLM2-135M on the CPU) for the duration.
MIPROv2 needs optuna: ``pip install 'tgispy[optimizers]'``.

usage: python examples/mipro_compile.py [--url http://127.0.0.1:8080] [--candidates 4]
       [--trials 6] [--save compiled.json]
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

import tgispy as dspy
from tgispy.evaluate import Evaluate, normalize_text
from tgispy.teleprompt import MIPROv2

QA = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of England?", "London"),
    ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of Spain?", "Madrid"),
    ("What is the capital of Egypt?", "Cairo"),
    ("What is the capital of China?", "Beijing"),
    ("What is the capital of Greece?", "Athens"),
]


def answer_contains(example: dspy.Example, pred: dspy.Prediction, trace: Any = None) -> bool:
    """The gold answer appears in the predicted answer (small models add words around it)."""
    return normalize_text(example.answer) in normalize_text(pred.answer)


@contextlib.contextmanager
def tgi_url(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tgispy.server import start_server

    print("starting the embedded TGI server (tgispy serve, SmolLM2-135M) ...", flush=True)
    with start_server(["--parallel", "4"]) as server:
        yield server.url


def run(
    url: str,
    *,
    candidates: int = 4,
    trials: int = 6,
    max_tokens: int = 48,
    threads: int = 4,
    train: int = 6,
    save: str | None = None,
) -> dict[str, Any]:
    """Score the program, compile it with MIPROv2, score it again; returns both scores."""
    examples = [dspy.Example(question=q, answer=a).with_inputs("question") for q, a in QA]
    trainset, devset = examples[:train], examples[train:]
    lm = dspy.HFClientTGI(
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        port=None,
        url=url,
        max_tokens=max_tokens,
        cache=False,
    )
    dspy.configure(lm=lm)
    evaluate = Evaluate(devset=devset, metric=answer_contains, num_threads=threads, max_errors=None)
    program = dspy.ChainOfThought("question -> answer")
    before = evaluate(program)
    optimizer = MIPROv2(metric=answer_contains, num_candidates=candidates, num_threads=threads)
    compiled = optimizer.compile(
        program,
        trainset=trainset,
        num_trials=trials,
        max_bootstrapped_demos=2,
        max_labeled_demos=2,
        minibatch=False,
        requires_permission_to_run=False,
    )
    after = evaluate(compiled)
    if save:
        compiled.save(save)
    return {
        "before": before,
        "after": after,
        "instructions": compiled.extended_signature.instructions,
        "requests": len(lm.history),
        "program": compiled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="base URL of a running TGI server")
    parser.add_argument("--candidates", type=int, default=4, help="MIPROv2 num_candidates")
    parser.add_argument("--trials", type=int, default=6, help="MIPROv2 num_trials")
    parser.add_argument("--threads", type=int, default=4, help="examples in flight")
    parser.add_argument("--save", help="write the compiled program to this JSON file")
    args = parser.parse_args()
    with tgi_url(args.url) as url:
        result = run(
            url,
            candidates=args.candidates,
            trials=args.trials,
            threads=args.threads,
            save=args.save,
        )
    print(f"score before: {result['before']}  after MIPROv2: {result['after']}")
    print(f"instruction: {result['instructions']}")
    print(f"{result['requests']} requests")


if __name__ == "__main__":
    main()
