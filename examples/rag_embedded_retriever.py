"""RAG over the embedded retriever: `tgispy serve-rm` serves a JSONL corpus over ColBERTv2's HTTP
protocol, and a DSPy 2.4 RAG program reaches it through dspy.ColBERTv2, unchanged.

usage: python examples/rag_embedded_retriever.py [--url http://127.0.0.1:8080] [--rm-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import tgispy as dspy
from tgispy.retrieve._serve import READY_PREFIX

try:
    from examples._server import CORPUS, lm, tgi_url
except ImportError:  # run as a script from examples/
    from _server import CORPUS, lm, tgi_url  # type: ignore[no-redef]


class RAG(dspy.Module):
    def __init__(self, num_passages: int = 2) -> None:
        super().__init__()
        self.retrieve = dspy.Retrieve(k=num_passages)
        self.generate_answer = dspy.ChainOfThought("context, question -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        context = self.retrieve(question).passages
        prediction = self.generate_answer(context=context, question=question)
        return dspy.Prediction(context=context, answer=prediction.answer)


@contextlib.contextmanager
def serve_rm(rm_url: str | None) -> Iterator[str]:
    """``rm_url``, or `tgispy serve-rm` over the example corpus on a free port."""
    if rm_url:
        yield rm_url
        return
    command = [sys.executable, "-m", "tgispy.retrieve._serve", str(CORPUS), "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"serve-rm did not start: {line!r}")
        yield line[len(READY_PREFIX) :].split()[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def run(url: str, rm_url: str) -> dict[str, Any]:
    """Answer one question with retrieved context; return context, answer and the prompt tail."""
    client = lm(url, max_tokens=48)
    with dspy.context(lm=client, rm=dspy.ColBERTv2(url=rm_url)):
        pred = RAG()(question="What is the capital of Egypt?")
    return {
        "context": pred.context,
        "answer": pred.answer,
        "prompt_has_context": "«Egypt | Cairo is the capital of Egypt"
        in client.history[0]["prompt"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running TGI server (default: start tgispy serve)")
    parser.add_argument("--rm-url", help="a running ColBERTv2 / serve-rm server")
    args = parser.parse_args()
    with tgi_url(args.url) as url, serve_rm(args.rm_url) as rm_url:
        print(json.dumps(run(url, rm_url), indent=2))


if __name__ == "__main__":
    main()
