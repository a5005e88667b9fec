"""A capitals QA task and an LM that answers the query at the end of the prompt."""

from __future__ import annotations

import asyncio
from typing import Any

import tgispy as dspy
from tgispy.lm._base import Completion, Generation
from tgispy.utils.dummies import DummyLM

CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Japan": "Tokyo",
    "Peru": "Lima",
    "Chile": "Santiago",
    "Kenya": "Nairobi",
    "Egypt": "Cairo",
}
WRONG = ("Italy", "Peru")  # the LM answers "Milan" for these


def trainset(countries: list[str] | None = None) -> list[dspy.Example]:
    return [
        dspy.Example(question=f"What is the capital of {c}?", answer=CAPITALS[c]).with_inputs(
            "question"
        )
        for c in (countries or list(CAPITALS))
    ]


def answer_for(prompt: str) -> str:
    """Answer the query part of the prompt (demos mention other countries too)."""
    query = prompt.rsplit("\n\n---\n\n", 1)[-1]
    for country, capital in CAPITALS.items():
        answer = "Milan" if country in WRONG else capital
        if f"capital of {country}?\nReasoning:" in query:
            return f"produce the answer. We know {country}.\nAnswer: {answer}"
        if f"capital of {country}?\nAnswer:" in query:
            return answer
    return "No more responses"


class CapitalsLM(DummyLM):
    """Answers from :func:`answer_for`; records each call's temperature, optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__({})
        self.delay = delay
        self.temperatures: list[Any] = []  # shared with copies (LM.copy is shallow)
        self.in_flight = [0, 0]  # current, peak (shared with copies)

    async def acomplete(self, prompt: str, **kwargs: Any) -> Generation:
        self.temperatures.append({**self.kwargs, **kwargs}.get("temperature"))
        self.in_flight[0] += 1
        self.in_flight[1] = max(self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return Generation(prompt, (Completion(answer_for(prompt)),))
        finally:
            self.in_flight[0] -= 1
