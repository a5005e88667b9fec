"""JSONAdapter / ChatAdapter: prompts, messages, grammars, parsing and retries (pure, pinned)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.typed.types_ import Arith, Color, Extract, Person, Sentiment

import tgispy as dspy
from tgispy.adapters import Adapter, ChatAdapter, Invalid, JSONAdapter
from tgispy.errors import ConfigError, ParseError

DEMOS: list[dict[str, Any]] = [
    {"text": "Bob is 3 and lives in Oslo.", "person": Person(name="Bob", age=3, city="Oslo")},
    {"text": "a demo without outputs is not shown"},
    {"text": "Augmented.", "person": {"name": "X", "age": 1, "city": "Y"}, "augmented": True},
]

EXTRACT_PROMPT = """\
Extract the person described in the text.

Output fields:
- person: the person mentioned

---

Follow the following format.

Text: ${text}
Output: a JSON object {"person": {"name": string, "age": integer, "city": string}}

---

Text: Augmented.
Output: {"person": {"name": "X", "age": 1, "city": "Y"}}

---

Text: Bob is 3 and lives in Oslo.
Output: {"person": {"name": "Bob", "age": 3, "city": "Oslo"}}

---

Text: Ann is 30 and lives in Rome.
Output:"""

SENTIMENT_PROMPT = """\
Classify the sentiment of the review.

---

Follow the following format.

Review: ${review}
Label: one of: positive, negative, neutral

---

Review: Great!
Label: positive

---

Review: Awful.
Label:"""


def test_the_json_prompt_shows_schema_demos_and_inputs() -> None:
    prompt = JSONAdapter().format(Extract, DEMOS, {"text": "Ann is 30 and lives in Rome."})
    assert prompt == EXTRACT_PROMPT


def test_a_single_closed_field_is_asked_for_as_a_bare_value() -> None:
    demos = [{"review": "Great!", "label": "positive"}]
    assert JSONAdapter().format(Sentiment, demos, {"review": "Awful."}) == SENTIMENT_PROMPT
    # regex=False asks for a JSON object instead
    prompt = JSONAdapter(regex=False).format(Sentiment, demos, {"review": "Awful."})
    assert 'Output: a JSON object {"label": "positive" | "negative" | "neutral"}' in prompt
    assert 'Output: {"label": "positive"}' in prompt


def test_the_template_form_is_kept_for_inputs() -> None:
    sig = dspy.Signature("context, question -> answer: int")
    prompt = JSONAdapter().format(sig, [], {"context": ["p1", "p2"], "question": " two  words "})
    assert prompt.endswith("Context:\n[1] «p1»\n[2] «p2»\nQuestion: two words\nAnswer:")


def test_typed_inputs_are_rendered_as_json() -> None:
    sig = dspy.Signature("items: list[int], who -> total: int")
    prompt = JSONAdapter().format(
        sig, [], {"items": [1, 2], "who": Person(name="A", age=1, city="B")}
    )
    assert prompt.endswith('Items: [1, 2]\nWho: {"name": "A", "age": 1, "city": "B"}\nTotal:')
    flag = dspy.Signature("flag: bool -> total: int, note")
    assert JSONAdapter().format(flag, [], {"flag": True}).endswith("Flag: true\nOutput:")
    # four template fields or more: DSPy's blank lines between fields
    long = dspy.Signature("a: int, b: int, c: int -> total: int, note")
    assert (
        JSONAdapter()
        .format(long, [], {"a": 1, "b": 2, "c": 3})
        .endswith("A: 1\n\nB: 2\n\nC: 3\n\nOutput:")
    )


def test_the_output_label_avoids_an_input_named_output() -> None:
    sig = dspy.Signature("output -> total: int, note")
    prompt = JSONAdapter().format(sig, [], {"output": "x"})
    assert prompt.endswith("Output: x\nJSON Output:")
    assert 'JSON Output: a JSON object {"total": integer, "note": string}' in prompt


def test_untyped_signatures_can_ask_for_json_too() -> None:
    adapter = JSONAdapter()
    sig = dspy.Signature("question -> answer")
    prompt = adapter.format(sig, [{"question": "1+1?", "answer": "2"}], {"question": "2+2?"})
    assert 'Output: a JSON object {"answer": string}' in prompt
    assert 'Question: 1+1?\nOutput: {"answer": "2"}' in prompt
    assert adapter.plan(sig).grammar() == {
        "type": "json",
        "value": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    }
    assert adapter.parse(sig, {"question": "2+2?"}, '{"answer": "4"}') == {
        "question": "2+2?",
        "answer": "4",
    }


def test_chat_messages() -> None:
    messages = ChatAdapter().format_messages(Extract, DEMOS, {"text": "Ann, 30, Rome."})
    assert messages == [
        {
            "role": "system",
            "content": "Extract the person described in the text.\n\nOutput fields:\n"
            "- person: the person mentioned\n\nReply with only a JSON object "
            '{"person": {"name": string, "age": integer, "city": string}}.',
        },
        {"role": "user", "content": "Text: Bob is 3 and lives in Oslo."},
        {"role": "assistant", "content": '{"person": {"name": "Bob", "age": 3, "city": "Oslo"}}'},
        {"role": "user", "content": "Text: Augmented."},
        {"role": "assistant", "content": '{"person": {"name": "X", "age": 1, "city": "Y"}}'},
        {"role": "user", "content": "Text: Ann, 30, Rome."},
    ]


def test_chat_never_uses_the_regex_form() -> None:
    plan = ChatAdapter().plan(Sentiment)
    assert plan.chat and plan.single is None
    assert plan.response_format()["value"]["properties"]["label"]["enum"] == [
        "positive",
        "negative",
        "neutral",
    ]
    system = plan.messages([], {"review": "ok"})[0]["content"]
    assert system.endswith(
        'Reply with only a JSON object {"label": "positive" | "negative" | "neutral"}.'
    )


def test_grammars() -> None:
    adapter = JSONAdapter()
    assert adapter.plan(Sentiment).grammar() == {
        "type": "regex",
        "value": " ?(positive|negative|neutral)\\n?",
    }
    assert adapter.plan(Arith).grammar()["type"] == "regex"
    extract = adapter.plan(Extract).grammar()
    assert extract["type"] == "json"
    assert extract["value"]["properties"]["person"]["required"] == ["name", "age", "city"]
    assert adapter.plan(Extract, chat=True).response_format() == extract


def test_parse_returns_typed_values() -> None:
    adapter = JSONAdapter()
    out = adapter.parse(
        Extract, {"text": "t"}, '{"person": {"name": "A", "age": "7", "city": "C"}}'
    )
    assert out == {"text": "t", "person": Person(name="A", age=7, city="C")}
    assert adapter.parse(Sentiment, {}, " negative\n") == {"label": "negative"}
    assert adapter.parse(Arith, {}, " 42") == {"answer": 42}
    sig = dspy.Signature({"q": dspy.InputField(), "c": (Color, dspy.OutputField())})
    assert adapter.parse(sig, {}, "blue") == {"c": Color.BLUE}


@pytest.mark.parametrize(
    ("completion", "label"),
    [
        ('"neutral"', "neutral"),
        ("negative.", "negative"),
        ('"positive".', "positive"),
        ("`neutral`", "neutral"),
        ("positive\nReview: next", "positive"),
    ],
)
def test_bare_values_written_without_a_grammar_are_read_leniently(
    completion: str, label: str
) -> None:
    assert JSONAdapter().parse(Sentiment, {}, completion) == {"label": label}


@pytest.mark.parametrize(
    ("signature", "completion", "message"),
    [
        (Sentiment, "Positive", "is not one of: positive, negative, neutral: label: Input should"),
        (Arith, "four", "is not an integer: answer: 'four' is not an integer"),
        (Extract, "I think it is Ann", "no JSON object found"),
        (Extract, '{"person": {"name": "A", "age": 3', "raise max_tokens"),
        (Extract, '{"person": {"name": "A", "age": "old", "city": "C"}}', "person.age: Input"),
    ],
)
def test_parse_errors_carry_the_completion(signature: Any, completion: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        JSONAdapter().parse(signature, {}, completion)
    assert info.value.completion == completion
    assert f"the LM's output for {signature.__name__} is not" in info.value.message


def test_check_returns_why_a_completion_is_invalid() -> None:
    plan = JSONAdapter().plan(Arith)
    assert plan.check("12") == {"answer": 12}
    invalid = plan.check("twelve")
    assert invalid == Invalid("answer: 'twelve' is not an integer", "twelve")


def test_retry_prompt_shows_the_bad_output_and_the_error() -> None:
    plan = JSONAdapter().plan(Extract)
    prompt = plan.prompt([], {"text": "Ann is 30."})
    invalid = plan.check(" Ann, 30")
    assert isinstance(invalid, Invalid)
    retry = plan.retry_prompt(prompt, invalid)
    assert retry == (
        prompt + " Ann, 30\n\nThat output is not valid: no JSON object found in the completion. "
        'Write it again as a JSON object {"person": {"name": string, "age": integer, '
        '"city": string}}, nothing else.\n\nOutput:'
    )
    regex_plan = JSONAdapter().plan(Sentiment)
    regex_prompt = regex_plan.prompt([], {"review": "Meh"})
    bad = regex_plan.check("so-so")
    assert isinstance(bad, Invalid)
    assert regex_plan.retry_prompt(regex_prompt, bad).endswith(
        "Write it again as one of: positive, negative, neutral, nothing else.\n\nLabel:"
    )


def test_retry_messages_add_the_reply_and_the_error() -> None:
    plan = ChatAdapter().plan(Arith)
    messages = plan.messages([], {"question": "1+1?"})
    bad = plan.check("two")
    assert isinstance(bad, Invalid)
    retry = plan.retry_messages(messages, bad)
    assert retry[:-2] == messages
    assert retry[-2] == {"role": "assistant", "content": "two"}
    assert retry[-1]["role"] == "user"
    assert "no JSON object found" in retry[-1]["content"]
    assert 'a JSON object {"answer": integer}' in retry[-1]["content"]


def test_adapters_satisfy_the_adapter_protocol_and_settings() -> None:
    assert isinstance(JSONAdapter(), Adapter) and isinstance(ChatAdapter(), Adapter)
    dspy.configure(adapter=JSONAdapter(grammar=False))
    assert repr(dspy.settings.adapter) == "JSONAdapter(chat=None, grammar=False, regex=True)"
    assert repr(ChatAdapter()) == "ChatAdapter(grammar=True)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"grammar": "yes"}, "grammar must be True or False"), ({"chat": 1.5}, "chat must be None")],
)
def test_bad_adapter_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        JSONAdapter(**kwargs)


def test_plans_are_cached_and_follow_edits() -> None:
    adapter = JSONAdapter()
    sig = dspy.Signature("question -> answer: int, why")
    plan = adapter.plan(sig)
    assert adapter.plan(sig) is plan
    assert adapter.plan(sig, chat=True) is not plan
    sig.fields["question"].json_schema_extra["prefix"] = "Q:"
    edited = adapter.plan(sig)
    assert edited is not plan
    assert edited.prompt([], {"question": "x"}).endswith("Q: x\nOutput:")
