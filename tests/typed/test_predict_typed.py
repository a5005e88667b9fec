"""Predict / ChainOfThought with typed outputs, on scripted LMs (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from tests.typed.types_ import Arith, Color, Extract, Person, Sentiment

import tgispy as dspy
from tgispy.adapters import ChatAdapter, JSONAdapter, TemplateAdapter
from tgispy.errors import ConfigError, ParseError
from tgispy.predict._typed import lm_supports_grammar, request_config, uses_chat
from tgispy.utils.dummies import DummyLM


class GrammarLM(DummyLM):
    """A DummyLM whose 'server' supports grammars (records them like any kwarg)."""

    def __init__(self, answers: Sequence[str], **defaults: Any) -> None:
        super().__init__(answers)
        self.kwargs.update(defaults)

    async def supports_grammar(self) -> bool:
        return True


class ChatLM(DummyLM):
    """A DummyLM with a chat API: answers messages from the script, records them."""

    mode = "chat"

    def __init__(self, answers: Sequence[str], *, grammar: bool = True) -> None:
        super().__init__(answers)
        self.grammar = grammar
        self.chats: list[tuple[list[dict[str, str]], dict[str, Any]]] = []

    def supports_grammar(self) -> bool:  # a sync check works as well as a coroutine
        return self.grammar

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        self.chats.append(([dict(m) for m in messages], kwargs))
        n = int(kwargs.get("n") or 1)
        return {"choices": [{"text": self._answer("")} for _ in range(n)]}


def test_typed_signature_is_routed_to_the_json_adapter() -> None:
    lm = DummyLM(['{"person": {"name": "Ann", "age": 30, "city": "Rome"}}'])
    dspy.configure(lm=lm)
    pred = dspy.Predict(Extract)(text="Ann is 30 and lives in Rome.")
    assert pred.person == Person(name="Ann", age=30, city="Rome")
    prompt = lm.history[-1]["prompt"]
    assert prompt == JSONAdapter().format(Extract, [], {"text": "Ann is 30 and lives in Rome."})
    assert len(lm.history) == 1


def test_untyped_signatures_keep_the_dspy_template_byte_for_byte() -> None:
    lm = DummyLM(["4"])
    dspy.configure(lm=lm)
    sig = dspy.Signature("question -> answer")
    assert dspy.Predict(sig)(question="2+2?").answer == "4"
    assert lm.history[-1]["prompt"] == TemplateAdapter().format(sig, [], {"question": "2+2?"})
    assert "grammar" not in lm.history[-1]["raw_kwargs"]


def test_values_of_every_kind_come_back_typed() -> None:
    lm = DummyLM(["positive", " 12", "blue"])
    dspy.configure(lm=lm)
    assert dspy.Predict(Sentiment)(review="Great").label == "positive"
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    color = dspy.Signature({"q": dspy.InputField(), "color": (Color, dspy.OutputField())})
    assert dspy.Predict(color)(q="sky?").color is Color.BLUE


def test_without_grammar_a_bad_completion_is_retried_once_with_the_error() -> None:
    lm = DummyLM(["twelve", "12"])
    dspy.configure(lm=lm)
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    first, second = (entry["prompt"] for entry in lm.history)
    assert second.startswith(first + " twelve\n\n")
    assert "That output is not valid: answer: 'twelve' is not an integer." in second
    assert second.endswith("Answer:")


def test_without_grammar_two_bad_completions_raise_parse_error() -> None:
    lm = DummyLM(["I think Ann", 'still not {"json"'])
    dspy.configure(lm=lm)
    with pytest.raises(ParseError) as info:
        dspy.Predict(Extract)(text="Ann is 30.")
    assert info.value.completion == 'still not {"json"'
    assert "is not a JSON object" in str(info.value)
    assert len(lm.history) == 2


def test_with_grammar_the_request_carries_it_and_is_not_retried() -> None:
    lm = GrammarLM(['{"person": {"name": "A", "age": 1, "city": "B"}}'], stop=["\n"])
    dspy.configure(lm=lm)
    assert dspy.Predict(Extract)(text="t").person.name == "A"
    kwargs = lm.history[-1]["raw_kwargs"]
    assert kwargs["grammar"] == JSONAdapter().plan(Extract).grammar()
    assert kwargs["stop"] is None  # the LM's "\n" would cut the JSON; the grammar ends it

    lm = GrammarLM(['{"person": {"name": "A", "age": 1'])  # cut off by max_tokens
    dspy.configure(lm=lm)
    with pytest.raises(ParseError, match="raise max_tokens") as info:
        dspy.Predict(Extract)(text="t")
    assert info.value.completion == '{"person": {"name": "A", "age": 1'
    assert len(lm.history) == 1


def test_grammar_can_be_turned_off_per_adapter() -> None:
    lm = GrammarLM(["nope", "negative"], stop=["\n"])
    dspy.configure(lm=lm)
    pred = dspy.Predict(Sentiment, adapter=JSONAdapter(grammar=False))(review="Bad")
    assert pred.label == "negative"
    assert all("grammar" not in entry["raw_kwargs"] for entry in lm.history)
    assert len(lm.history) == 2


def test_regex_grammar_for_a_single_closed_field() -> None:
    lm = GrammarLM([" neutral"], stop=["\n"])
    dspy.configure(lm=lm)
    assert dspy.Predict(Sentiment)(review="Fine").label == "neutral"
    kwargs = lm.history[-1]["raw_kwargs"]
    assert kwargs["grammar"] == {"type": "regex", "value": " ?(positive|negative|neutral)\\n?"}
    assert "stop" not in kwargs  # a bare value ends at a newline: the LM's stop stays


def test_adapter_json_for_an_untyped_signature() -> None:
    lm = DummyLM(['{"answer": "Paris"}'])
    dspy.configure(lm=lm)
    pred = dspy.Predict("question -> answer", adapter="json")(question="Capital of France?")
    assert pred.answer == "Paris"
    assert lm.history[-1]["prompt"].endswith("Question: Capital of France?\nOutput:")
    # the same through configure
    lm = DummyLM(['{"answer": "Rome"}'])
    dspy.configure(lm=lm, adapter=JSONAdapter())
    assert dspy.Predict("question -> answer")(question="Capital of Italy?").answer == "Rome"


def test_adapter_text_keeps_dspy_behaviour_for_typed_signatures() -> None:
    lm = DummyLM(["12"])
    dspy.configure(lm=lm)
    pred = dspy.Predict(Arith, adapter="text")(question="5+7?")
    assert pred.answer == "12"  # a string, as DSPy 2.4 returned it
    assert lm.history[-1]["prompt"] == TemplateAdapter().format(Arith, [], {"question": "5+7?"})
    dspy.configure(adapter=TemplateAdapter())  # an explicit template adapter does the same
    lm2 = DummyLM(["13"])
    assert dspy.Predict(Arith)(question="6+7?", lm=lm2).answer == "13"


def test_module_adapter_wins_over_the_configured_one() -> None:
    lm = DummyLM(['{"answer": "x"}'])
    dspy.configure(lm=lm, adapter=TemplateAdapter())
    assert dspy.Predict("q -> answer", adapter="json")(q="?").answer == "x"


def test_bad_adapter_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="adapter must be one of"):
        dspy.Predict("q -> a", adapter="yaml")
    with pytest.raises(ConfigError, match="adapter must be one of"):
        dspy.Predict("q -> a", adapter=42)


def test_chain_of_thought_with_typed_outputs() -> None:
    lm = DummyLM(['{"rationale": "5 and 7 make 12.", "answer": 12}'])
    dspy.configure(lm=lm)
    pred = dspy.ChainOfThought(Arith)(question="5+7?")
    assert pred.answer == 12 and pred.rationale == "5 and 7 make 12."
    prompt = lm.history[-1]["prompt"]
    assert 'Output: a JSON object {"rationale": string, "answer": integer}' in prompt
    # the rationale's template desc reads as a sentence: custom prefix + desc, no ${...}
    assert (
        "Output fields:\n- rationale: Reasoning: Let's think step by step in order to produce "
        "the answer. We ...\n\n---" in prompt
    )


def test_n_completions_keep_the_valid_ones() -> None:
    lm = DummyLM(["x", "7", "8"])
    dspy.configure(lm=lm)
    pred = dspy.Predict(Arith, n=3)(question="?")
    assert pred.completions.answer == [7, 8]
    assert pred.answer == 7


def test_demos_are_shown_typed() -> None:
    lm = DummyLM(["negative"])
    dspy.configure(lm=lm)
    predictor = dspy.Predict(Sentiment)
    predictor.demos = [dspy.Example(review="Loved it", label="positive")]
    predictor(review="Hated it")
    assert (
        "Review: Loved it\nLabel: positive\n\n---\n\nReview: Hated it\nLabel:"
        in (lm.history[-1]["prompt"])
    )


def test_trace_records_typed_predictions() -> None:
    lm = DummyLM(["3"])
    with dspy.context(lm=lm, trace=[]):
        predictor = dspy.Predict(Arith)
        predictor(question="1+2?")
        ((module, inputs, pred),) = dspy.settings.trace
    assert module is predictor and inputs == {"question": "1+2?"} and pred.answer == 3


async def test_async_face() -> None:
    lm = DummyLM(["4", "5"])
    dspy.configure(lm=lm)
    predictor = dspy.Predict(Arith)
    first, second = await asyncio.gather(
        predictor.acall(question="2+2?"), predictor.acall(question="2+3?")
    )
    assert {first.answer, second.answer} == {4, 5}


def test_chat_mode_lm_gets_messages_with_response_format() -> None:
    lm = ChatLM(['{"answer": 12}'])
    dspy.configure(lm=lm)
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    ((messages, kwargs),) = lm.chats
    assert messages == JSONAdapter().format_messages(Arith, [], {"question": "5+7?"})
    assert kwargs["response_format"] == ChatAdapter().plan(Arith).response_format()
    assert "grammar" not in kwargs


def test_chat_without_grammar_retries_with_the_error_as_a_user_turn() -> None:
    lm = ChatLM(["twelve", '{"answer": 12}'], grammar=False)
    dspy.configure(lm=lm)
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    (first, kw1), (second, kw2) = lm.chats
    assert "response_format" not in kw1 and "response_format" not in kw2
    assert second[: len(first)] == first
    assert second[-2] == {"role": "assistant", "content": "twelve"}
    assert "no JSON object found" in second[-1]["content"]


def test_chat_adapter_needs_a_chat_api() -> None:
    dspy.configure(lm=DummyLM(["{}"]))
    with pytest.raises(ConfigError, match="has no chat API"):
        dspy.Predict(Arith, adapter="chat")(question="?")


def test_text_mode_lm_with_chat_api_uses_one_prompt_unless_asked() -> None:
    lm = ChatLM(["12"])
    lm.mode = "text"
    assert uses_chat(JSONAdapter(), lm) is False
    assert uses_chat(ChatAdapter(), lm) is True
    assert uses_chat(JSONAdapter(chat=False), ChatLM([])) is False


async def test_lm_supports_grammar() -> None:
    assert await lm_supports_grammar(DummyLM([])) is False
    assert await lm_supports_grammar(GrammarLM([])) is True
    assert await lm_supports_grammar(ChatLM([], grammar=False)) is False


def test_request_config_stop_rules() -> None:
    json_plan = JSONAdapter().plan(Extract)
    lm_kwargs = {"stop": ["\n"]}
    assert request_config(json_plan, {}, lm_kwargs, constrained=False)["stop"] == ["\n\n"]
    assert request_config(json_plan, {}, lm_kwargs, constrained=True)["stop"] is None
    assert request_config(json_plan, {"stop": ["END"]}, lm_kwargs, constrained=True)["stop"] == [
        "END"
    ]
    assert "stop" not in request_config(json_plan, {}, {}, constrained=True)
    chat_plan = ChatAdapter().plan(Extract)
    assert request_config(chat_plan, {}, lm_kwargs, constrained=False)["stop"] is None
    out = request_config(chat_plan, {"n": 2}, {}, constrained=True)
    assert out == {"n": 2, "response_format": chat_plan.response_format()}
    # a grammar the caller passed is kept
    mine = {"type": "regex", "value": "[0-9]+"}
    assert request_config(json_plan, {"grammar": mine}, {}, constrained=True)["grammar"] == mine


def test_saved_typed_demos_give_the_same_prompt_after_loading() -> None:
    lm = DummyLM(['{"person": {"name": "Ann", "age": 30, "city": "Rome"}}'] * 2)
    dspy.configure(lm=lm)
    original = dspy.Predict(Extract)
    original.demos = [
        dspy.Example(text="Bob, 3, Oslo", person=Person(name="Bob", age=3, city="Oslo"))
    ]
    original(text="Ann, 30, Rome")
    state = original.dump_state()
    assert isinstance(state["demos"][0]["person"], str)  # saved as JSON text, as DSPy 2.4 did
    loaded = dspy.Predict(Extract)
    loaded.load_state(state)
    loaded(text="Ann, 30, Rome")
    first, second = (entry["prompt"] for entry in lm.history)
    assert first == second
    assert 'Output: {"person": {"name": "Bob", "age": 3, "city": "Oslo"}}' in first
