"""Compile a ChainOfThought QA program with BootstrapFewShot and compare scores before / after.

Runs against a TGI server: pass --url for a running one (real TGI or `tgispy serve`), or let the
script start the embedded server (`tgispy serve`, SmolLM2-135M on the CPU) for the duration.

usage: python examples/qa_compile.py [--url http://127.0.0.1:8080] [--save compiled.json]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import tgispy as dspy
from tgispy.evaluate import Evaluate, normalize_text
from tgispy.teleprompt import BootstrapFewShot

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="base URL of a running TGI server")
    parser.add_argument("--save", help="write the compiled program to this JSON file")
    parser.add_argument("--threads", type=int, default=4, help="examples in flight")
    args = parser.parse_args()

    examples = [dspy.Example(question=q, answer=a).with_inputs("question") for q, a in QA]
    trainset, devset = examples[:6], examples[6:]

    with tgi_url(args.url) as url:
        lm = dspy.HFClientTGI(
            model="HuggingFaceTB/SmolLM2-135M-Instruct",
            port=None,
            url=url,
            max_tokens=48,
            cache=False,
        )
        dspy.configure(lm=lm)
        evaluate = Evaluate(
            devset=devset,
            metric=answer_contains,
            num_threads=args.threads,
            display_progress=True,
            display_table=True,
            max_errors=None,
        )
        program = dspy.ChainOfThought("question -> answer")

        print("\n== before compiling ==")
        before = evaluate(program)

        started = time.perf_counter()
        optimizer = BootstrapFewShot(
            metric=answer_contains, max_bootstrapped_demos=2, max_labeled_demos=4, max_rounds=2
        )
        compiled = optimizer.compile(program, trainset=trainset)
        print(f"\ncompiled in {time.perf_counter() - started:.1f} s; demos:")
        for demo in compiled.demos:
            kind = "bootstrapped" if demo.get("augmented") else "labeled"
            print(f"  [{kind}] {demo.question} -> {demo.answer}")

        print("\n== after compiling ==")
        after = evaluate(compiled)
        print(f"\nscore before: {before}%  after: {after}%")
        if args.save:
            compiled.save(args.save)
            print(f"saved the compiled program to {args.save}")


if __name__ == "__main__":
    main()
