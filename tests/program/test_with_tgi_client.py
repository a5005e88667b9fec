"""The program layer over the real TGI client and a scripted TGI server on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

import tgispy as dspy
from tgispy.testing import Reply, ScriptedTGI

COT_PROMPT = (
    "Given the fields `question`, produce the fields `answer`.\n\n---\n\nFollow the following "
    "format.\n\nQuestion: ${question}\nReasoning: Let's think step by step in order to "
    "${produce the answer}. We ...\nAnswer: ${answer}\n\n---\n\nQuestion: What is the capital of "
    "France?\nReasoning: Let's think step by step in order to"
)
RATIONALE = " produce the answer. We know that Paris is the capital of France."


@pytest.mark.parametrize("face", ["sync", "async"])
def test_chain_of_thought_with_the_seed_defaults_costs_two_requests(face: str) -> None:
    script = [
        Reply.generate(RATIONALE, finish_reason="stop_sequence"),
        Reply.generate(" Paris", finish_reason="stop_sequence"),
    ]
    with ScriptedTGI(script) as server:
        lm = dspy.HFClientTGI(model="m", port=server.port, url="http://127.0.0.1", cache=False)
        dspy.configure(lm=lm)
        qa = dspy.ChainOfThought("question -> answer")
        question = "What is the capital of France?"
        if face == "sync":
            pred = qa(question=question)
        else:
            pred = asyncio.run(qa.acall(question=question))
        generations = [r for r in server.requests if r.method == "POST"]

    assert pred.rationale == RATIONALE.strip()
    assert pred.answer == "Paris"
    assert [r.json["inputs"] for r in generations] == [
        COT_PROMPT,
        COT_PROMPT + RATIONALE.rstrip() + "\nAnswer:",
    ]
    first, second = (r.json["parameters"] for r in generations)
    assert first["stop"] == second["stop"] == ["\n", "\n\n"]
    assert first["max_new_tokens"] == second["max_new_tokens"] == 75
    assert len(lm.history) == 2
    assert dspy.inspect_history(n=1).count("Answer:") >= 2
