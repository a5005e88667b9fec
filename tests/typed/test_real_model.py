"""Typed outputs on a real model: SmolLM2-135M through ``tgispy serve`` (llama.cpp grammars).

With grammar, every one of 20 varied inputs per signature must come back as a valid typed value.
Without grammar (``JSONAdapter(grammar=False)``: text parsing plus one retry), the same inputs
are run to show how often a 135M model breaks the format; the counts are printed (run with
``-s`` or ``-rP`` to see them) and only their consistency is asserted.
"""

from __future__ import annotations

import asyncio
from typing import Any, get_args

import pytest
from tests.typed.types_ import Arith, Extract, Person, Sentiment

import tgispy as dspy
from tgispy.adapters import ChatAdapter, JSONAdapter
from tgispy.errors import ParseError
from tgispy.lm._tgi import HFClientTGI
from tgispy.server._process import ServerHandle

pytestmark = pytest.mark.model


_OPS = [("plus", lambda a, b: a + b), ("minus", lambda a, b: a - b), ("times", lambda a, b: a * b)]
ARITH_INPUTS = [
    {"question": f"What is {3 + 7 * i % 40} {_OPS[i % 3][0]} {2 + 3 * i % 11}?"} for i in range(20)
]
_NAMES = [
    "Alice",
    "Bob",
    "Carla",
    "Dmitri",
    "Eve",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jon",
    "Kemal",
    "Lena",
    "Mia",
    "Nils",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
_CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Seoul", "Dublin", "Madrid"]
_TEMPLATES = [
    "{name} is {age} years old and lives in {city}.",
    "Meet {name}, a {age}-year-old from {city}.",
    "{name} ({age}) moved to {city} last year.",
    "Living in {city}, {name} just turned {age}.",
]
EXTRACT_INPUTS = [
    {
        "text": _TEMPLATES[i % 4].format(
            name=_NAMES[i], age=19 + 3 * i % 60, city=_CITIES[(i * 7) % 10]
        )
    }
    for i in range(20)
]
SENTIMENT_INPUTS = [
    {"review": review}
    for review in [
        "I loved this film, the acting was superb.",
        "Terrible service, we waited an hour and left.",
        "It was okay, nothing memorable.",
        "Absolutely wonderful stay, would book again!",
        "The food was cold and bland.",
        "Average product, does what it says.",
        "Best purchase I made this year.",
        "It broke after one day of use.",
        "Not bad, not great.",
        "Great value for the price.",
        "The staff were rude and unhelpful.",
        "A masterpiece of modern cinema.",
        "I want my money back.",
        "Delivery was on time, packaging fine.",
        "This book changed my life.",
        "Boring plot and flat characters.",
        "The hotel was clean and quiet.",
        "Worst customer support ever.",
        "It is a phone. It makes calls.",
        "Such a delightful little cafe!",
    ]
]
LABELS = set(get_args(Sentiment.fields["label"].annotation))

#: (name, signature, inputs, max_tokens): budgets a little above what a valid answer needs, so an
#: unconstrained model that rambles costs little
CASES: list[tuple[str, Any, list[dict[str, Any]], int]] = [
    ("answer: int", Arith, ARITH_INPUTS, 12),
    ("person: Person (3 fields)", Extract, EXTRACT_INPUTS, 40),
    ("label: Literal[...]", Sentiment, SENTIMENT_INPUTS, 12),
]


def _valid(signature: Any, pred: dspy.Prediction) -> bool:
    if signature is Arith:
        return type(pred.answer) is int
    if signature is Extract:
        person = pred.person
        return (
            isinstance(person, Person)
            and isinstance(person.name, str)
            and type(person.age) is int
            and isinstance(person.city, str)
        )
    return pred.label in LABELS


@pytest.fixture(scope="module")
def server(model_server: ServerHandle) -> ServerHandle:
    """The session's shared real-model server (tests/conftest.py): its 4 llama.cpp slots batch
    the concurrent requests below."""
    return model_server


def _lm(server: ServerHandle, **kwargs: Any) -> HFClientTGI:
    return HFClientTGI(
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        port=None,
        url=server.url,
        cache=False,
        **kwargs,
    )


async def _run(
    predictor: dspy.Predict, inputs: list[dict[str, Any]]
) -> list[dspy.Prediction | ParseError]:
    async def one(values: dict[str, Any]) -> dspy.Prediction | ParseError:
        try:
            return await predictor.acall(**values)  # type: ignore[no-any-return]
        except ParseError as exc:
            return exc

    return list(await asyncio.gather(*(one(v) for v in inputs)))


async def test_grammar_gives_valid_typed_values_on_every_input(server: ServerHandle) -> None:
    lm = _lm(server)
    assert await lm.supports_grammar()
    dspy.configure(lm=lm)
    lines = []
    for name, signature, inputs, max_tokens in CASES:
        lm.history.clear()
        results = await _run(dspy.Predict(signature, max_tokens=max_tokens), inputs)
        errors = [r for r in results if isinstance(r, ParseError)]
        assert not errors, f"{name}: {[e.completion for e in errors]}"
        valid = sum(_valid(signature, r) for r in results if isinstance(r, dspy.Prediction))
        assert valid == len(inputs) == 20, name
        # one constrained request per input, never a retry
        assert len(lm.history) == 20
        assert all("grammar" in entry["raw_kwargs"] for entry in lm.history)
        lines.append(f"{name}: {valid}/20 valid")
    print("\nwith grammar:", "; ".join(lines))


async def test_without_grammar_the_same_inputs_often_fail(server: ServerHandle) -> None:
    lm = _lm(server)
    dspy.configure(lm=lm)
    lines = []
    total_ok = 0
    for name, signature, inputs, max_tokens in CASES:
        lm.history.clear()
        predictor = dspy.Predict(
            signature, adapter=JSONAdapter(grammar=False), max_tokens=max_tokens
        )
        results = await _run(predictor, inputs)
        assert all("grammar" not in entry["raw_kwargs"] for entry in lm.history)
        ok = [r for r in results if isinstance(r, dspy.Prediction)]
        failed = [r for r in results if isinstance(r, ParseError)]
        assert len(ok) + len(failed) == 20
        assert all(_valid(signature, r) for r in ok)  # whatever parses is validated
        assert all(isinstance(e.completion, str) for e in failed)  # failures keep the raw text
        retries = len(lm.history) - 20
        # a retry follows every first-attempt failure, and every final failure had one
        assert len(failed) <= retries <= 20
        first_try = 20 - retries
        total_ok += len(ok)
        lines.append(f"{name}: {first_try}/20 valid on the first try, {len(ok)}/20 after one retry")
    print("\nwithout grammar:", "; ".join(lines), f"(total {total_ok}/60)")


async def test_chat_mode_with_response_format(server: ServerHandle) -> None:
    lm = _lm(server, mode="chat")
    dspy.configure(lm=lm)
    for signature, inputs in ((Extract, EXTRACT_INPUTS[:4]), (Sentiment, SENTIMENT_INPUTS[:4])):
        predictor = dspy.Predict(signature, adapter=ChatAdapter(), max_tokens=40)
        results = await _run(predictor, inputs)
        assert all(isinstance(r, dspy.Prediction) and _valid(signature, r) for r in results), (
            results
        )
    assert all(entry["kwargs"].get("response_format") for entry in lm.history)
