"""The program -> LM and program -> adapter contracts: DSPy 2.4's custom-LM pattern (overriding
``__call__`` or ``basic_request``) and adapter subclasses are honoured; capabilities are
declared."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import tgispy as dspy
from tgispy.adapters import JSONAdapter
from tgispy.errors import ParseError
from tgispy.lm import LM
from tgispy.lm._base import CallableLM, Capabilities, Completion, Generation, as_lm
from tgispy.utils.dummies import DummyLM


class CallOverride(LM):
    """DSPy 2.4's documented pattern: a custom __call__ that returns completion strings."""

    def __init__(self) -> None:
        super().__init__("custom")
        self.prompts: list[str] = []

    def __call__(
        self, prompt: str, only_completed: bool = True, return_sorted: bool = False, **kwargs: Any
    ) -> list[str]:
        self.prompts.append(prompt)
        return ["Paris"]


class BasicRequestOverride(LM):
    """DSPy 2.4's other pattern: basic_request returns the response dict and keeps history."""

    def __init__(self) -> None:
        super().__init__("custom")

    def basic_request(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        response = {"choices": [{"text": "Rome", "finish_reason": "stop"}]}
        self.history.append({"prompt": prompt, "response": response, "kwargs": kwargs})
        return response


class Wrapping(LM):
    """An override that adds to the base behaviour through super(): no loop back into itself."""

    def __init__(self) -> None:
        super().__init__("wrapping")
        self.calls = 0

    async def acomplete(self, prompt: str, **kwargs: Any) -> Generation:
        return Generation(prompt, (Completion("Berlin"),))

    def __call__(
        self, prompt: str, only_completed: bool = True, return_sorted: bool = False, **kwargs: Any
    ) -> list[str]:
        self.calls += 1
        return [
            t.upper() for t in super().__call__(prompt, only_completed, return_sorted, **kwargs)
        ]


@pytest.mark.parametrize("face", ["sync", "async"])
def test_an_overridden_call_is_what_predict_calls(face: str) -> None:
    lm = CallOverride()
    dspy.configure(lm=lm)
    qa = dspy.Predict("question -> answer")
    pred = qa(question="Capital?") if face == "sync" else asyncio.run(qa.acall(question="Capital?"))
    assert pred.answer == "Paris"
    assert lm.prompts and lm.prompts[0].endswith("Question: Capital?\nAnswer:")


def test_an_overridden_basic_request_is_what_predict_calls() -> None:
    lm = BasicRequestOverride()
    dspy.configure(lm=lm)
    assert dspy.ChainOfThought("question -> answer")(question="Capital?").answer == "Rome"
    assert len(lm.history) == 2  # its own entries only (a continuation), not doubled
    assert lm("hi") == ["Rome"] and lm.request("hi")["choices"][0]["text"] == "Rome"


def test_an_override_calling_super_does_not_loop() -> None:
    lm = Wrapping()
    dspy.configure(lm=lm)
    assert dspy.Predict("question -> answer")(question="Capital?").answer == "BERLIN"
    assert lm.calls == 1 and len(lm.history) == 1


def test_foreign_callables_become_lms_once() -> None:
    def model(prompt: str, **kwargs: Any) -> list[str]:
        return ["Madrid"]

    wrapped = as_lm(model)
    assert isinstance(wrapped, CallableLM) and as_lm(wrapped) is wrapped
    dspy.configure(lm=model)
    assert dspy.Predict("question -> answer")(question="Capital?").answer == "Madrid"
    with pytest.raises(TypeError):
        as_lm(42)


def test_capabilities_are_declared() -> None:
    assert DummyLM([]).capabilities == Capabilities()
    assert DummyLM([], chat=True, grammar=True).capabilities == Capabilities(
        chat=True, grammar=True
    )
    tgi = dspy.HFClientTGI(model="m", port=8080, url="http://127.0.0.1")
    assert tgi.capabilities.chat and tgi.capabilities.grammar

    class Declared(LM):
        declared_capabilities = Capabilities(streaming=True)

    assert Declared("x").capabilities == Capabilities(streaming=True)


def test_dummy_lm_with_grammar_gets_the_grammar_and_chat_gets_messages() -> None:
    from tests.typed.types_ import Arith

    lm = DummyLM([" 12"], grammar=True)
    dspy.configure(lm=lm)
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    assert lm.history[-1]["raw_kwargs"]["grammar"]["type"] == "regex"
    chat = DummyLM(['{"answer": 12}'], chat=True)
    dspy.configure(lm=chat)
    assert dspy.Predict(Arith, adapter="chat")(question="5+7?").answer == 12
    assert chat.history[-1]["messages"][-1]["role"] == "user"


class ShoutingJSON(JSONAdapter):
    """A JSONAdapter subclass with its own prompt and parser."""

    def format(
        self, signature: Any, demos: Sequence[Mapping[str, Any]], example: Mapping[str, Any]
    ) -> str:
        return "SHOUT: " + super().format(signature, demos, example)

    def parse(self, signature: Any, example: Mapping[str, Any], completion: str) -> dict[str, Any]:
        if "!" not in completion:
            raise ParseError("end with an exclamation mark")
        return super().parse(signature, example, completion.replace("!", ""))


def test_a_json_adapter_subclass_format_and_parse_are_used() -> None:
    from tests.typed.types_ import Arith

    lm = DummyLM([" 12", " 12!"])
    dspy.configure(lm=lm)
    assert dspy.Predict(Arith, adapter=ShoutingJSON())(question="5+7?").answer == 12
    first, second = (entry["prompt"] for entry in lm.history)
    assert first.startswith("SHOUT: ")
    assert "That output is not valid: end with an exclamation mark." in second
