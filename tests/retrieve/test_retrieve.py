"""Retrieve / RetrieveThenRerank over the configured rm (beyond the recorded DSPy 2.4 programs)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tgispy as dspy
from tgispy.dsp.utils import dotdict
from tgispy.utils.dummies import DummyLM

CORPUS = ["Paris is in France.", "Rome is in Italy.", "The Seine is in Paris.", "Bonn"]


def rm(query: str, k: int = 3, **kwargs: Any) -> list[dotdict]:
    words = set(query.lower().split())
    ranked = sorted(CORPUS, key=lambda p: -len(words & set(p.lower().rstrip(".").split())))
    return [dotdict(long_text=p, score=float(9 - i), pid=i) for i, p in enumerate(ranked[:k])]


def test_metadata_comes_back_per_field() -> None:
    dspy.configure(rm=rm)
    pred = dspy.Retrieve(k=2)("paris france", with_metadata=True)
    assert pred.passages == ["Paris is in France.", "The Seine is in Paris."]
    assert pred.pid == [0, 1] and pred.score == [9.0, 8.0]
    both = dspy.Retrieve(k=1)(["rome italy", "paris france"], with_metadata=True)
    assert [p.passages for p in both] == [["Rome is in Italy."], ["Paris is in France."]]


def test_k_per_call_and_state() -> None:
    dspy.configure(rm=rm)
    retrieve = dspy.Retrieve(k=1)
    assert len(retrieve("paris", k=3).passages) == 3
    assert retrieve.dump_state() == {"k": 1}
    retrieve.load_state({"k": 2})
    assert len(retrieve("paris").passages) == 2
    assert dspy.retrieve.retrieve.Retrieve is dspy.Retrieve


def test_retrieve_then_rerank() -> None:
    def reranker(query: str, passages: list[str]) -> list[float]:
        return [float(len(p)) for p in passages]  # longest first

    with pytest.raises(dspy.ConfigError, match="reranker"):
        dspy.RetrieveThenRerank(k=2)("paris")
    dspy.configure(rm=rm, reranker=reranker)
    assert dspy.RetrieveThenRerank(k=2)("paris") == [
        "The Seine is in Paris.",
        "Paris is in France.",
    ]
    pred = dspy.RetrieveThenRerank(k=1)("paris", with_metadata=True)
    assert pred.passages == ["The Seine is in Paris."] and pred.rerank_score == [22.0]


def test_no_rm_names_the_fix() -> None:
    with pytest.raises(dspy.ConfigError, match=r"configure\(rm="):
        dspy.Retrieve()("paris")


def test_react_runs_on_the_async_face_with_retrieve() -> None:
    lm = DummyLM(["look.\nAction 1: Search[paris france]", "ok.\nAction 2: Finish[France]"])
    dspy.configure(lm=lm, rm=rm)
    pred = asyncio.run(dspy.ReAct("question -> answer", max_iters=2).acall(question="Where?"))
    assert pred.answer == "France"
    assert pred.observations == [
        ["Paris is in France.", "The Seine is in Paris.", "Rome is in Italy."]
    ]
