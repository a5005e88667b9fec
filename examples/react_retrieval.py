"""ReAct with retrieval: the model searches an in-process BM25 index (dspy.Retrieve, ReAct's
default tool) and finishes with an answer.

usage: python examples/react_retrieval.py [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import tgispy as dspy
from tgispy.retrieve import BM25

try:
    from examples._server import CORPUS, lm, tgi_url
except ImportError:  # run as a script from examples/
    from _server import CORPUS, lm, tgi_url  # type: ignore[no-redef]


def run(url: str) -> dict[str, Any]:
    """Run ReAct (two steps at most); return the answer, the observations and the calls."""
    client = lm(url, max_tokens=48)
    with dspy.context(lm=client, rm=BM25(CORPUS, progress=False)):
        react = dspy.ReAct("question -> answer", max_iters=2, num_results=2)
        pred = react(question="Which city is the capital of Japan?")
    return {"answer": pred.answer, "observations": pred.observations, "calls": len(client.history)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running TGI server (default: start tgispy serve)")
    args = parser.parse_args()
    with tgi_url(args.url) as url:
        print(json.dumps(run(url), indent=2))


if __name__ == "__main__":
    main()
