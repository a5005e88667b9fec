"""Snapshot tests: the exact prompts of DSPy 2.4.17 (each string checked against DSPy itself)."""

from __future__ import annotations

from typing import Any

import pytest

import tgispy as dspy
from tgispy.adapters import Template, TemplateAdapter, format_answers, passages2text, template_for
from tgispy.utils.dummies import DummyLM

E = dspy.Example


class BasicQA(dspy.Signature):
    """Answer questions with short factoid answers."""

    context = dspy.InputField(desc="may contain relevant facts")
    question = dspy.InputField()
    answer = dspy.OutputField(desc="often between 1 and 5 words")


class ShortQA(dspy.Signature):
    """Answer questions with short factoid answers."""

    question = dspy.InputField()
    answer = dspy.OutputField(desc="often between 1 and 5 words")


def first_prompt(
    module: Any, script: list[str] | None = None, demos: list[Any] | None = None, **inputs: Any
) -> str:
    lm = DummyLM(script or ["x"])
    dspy.configure(lm=lm)
    if demos is not None:
        (module._predict if isinstance(module, dspy.ChainOfThought) else module).demos = demos
    module(**inputs)
    return str(lm.history[0]["prompt"])


COT_FRANCE = (
    "Given the fields `question`, produce the fields `answer`.\n\n---\n\nFollow the following "
    "format.\n\nQuestion: ${question}\nReasoning: Let's think step by step in order to "
    "${produce the answer}. We ...\nAnswer: ${answer}\n\n---\n\nQuestion: What is the capital of "
    "France?\nReasoning: Let's think step by step in order to"
)


def test_chain_of_thought_prompt_is_byte_for_byte_the_issue_example() -> None:
    prompt = first_prompt(
        dspy.ChainOfThought("question -> answer"), question="What is the capital of France?"
    )
    assert prompt == COT_FRANCE


def test_predict_prompt() -> None:
    prompt = first_prompt(dspy.Predict("question -> answer"), question="What is 2+2?")
    assert prompt == (
        "Given the fields `question`, produce the fields `answer`.\n\n---\n\n"
        "Follow the following format.\n\nQuestion: ${question}\nAnswer: ${answer}\n\n---\n\n"
        "Question: What is 2+2?\nAnswer:"
    )


def test_class_signature_with_descriptions_and_passages() -> None:
    prompt = first_prompt(
        dspy.ChainOfThought(BasicQA),
        context=["Paris is the capital of France.", "France is in  Europe.", "Lyon is\na city."],
        question="What is the capital of France?",
    )
    assert prompt == (
        "Answer questions with short factoid answers.\n\n---\n\n"
        "Follow the following format.\n\n"
        "Context: may contain relevant facts\n\n"
        "Question: ${question}\n\n"
        "Reasoning: Let's think step by step in order to ${produce the answer}. We ...\n\n"
        "Answer: often between 1 and 5 words\n\n---\n\n"
        "Context:\n[1] «Paris is the capital of France.»\n[2] «France is in  Europe.»\n"
        "[3] «Lyon is\na city.»\n\n"
        "Question: What is the capital of France?\n\n"
        "Reasoning: Let's think step by step in order to"
    )


@pytest.mark.parametrize(
    ("context", "rendered"),
    [
        (["Only one passage."], "Context: «Only one passage.»"),
        ([], "Context: N/A"),
        ("a  plain\nstring", "Context:\na  plain\nstring"),
    ],
)
def test_context_rendering(context: Any, rendered: str) -> None:
    prompt = first_prompt(dspy.Predict(BasicQA), context=context, question="Q?")
    assert prompt == (
        "Answer questions with short factoid answers.\n\n---\n\nFollow the following format.\n\n"
        "Context: may contain relevant facts\nQuestion: ${question}\n"
        "Answer: often between 1 and 5 words\n\n---\n\n" + rendered + "\nQuestion: Q?\nAnswer:"
    )


def test_labeled_demos_with_every_query_field_are_separate_parts() -> None:
    demos = [E(question="Who wrote Hamlet?", answer="Shakespeare"), E(question="2+2?", answer="4")]
    prompt = first_prompt(dspy.Predict(ShortQA), demos=demos, question="Capital of Italy?")
    assert prompt == (
        "Answer questions with short factoid answers.\n\n---\n\nFollow the following format.\n\n"
        "Question: ${question}\nAnswer: often between 1 and 5 words\n\n---\n\n"
        "Question: Who wrote Hamlet?\nAnswer: Shakespeare\n\n---\n\n"
        "Question: 2+2?\nAnswer: 4\n\n---\n\n"
        "Question: Capital of Italy?\nAnswer:"
    )


def test_labeled_and_augmented_demos_in_a_long_prompt() -> None:
    demos = [
        E(question="Who wrote Hamlet?", answer="Shakespeare"),
        E(
            context=["Rome is in Italy."],
            question="Capital of Italy?",
            rationale="find the capital. Rome is.",
            answer="Rome",
            augmented=True,
        ),
    ]
    prompt = first_prompt(
        dspy.ChainOfThought(BasicQA),
        demos=demos,
        context=["Paris is in France."],
        question="Capital of France?",
    )
    # The labeled demo lacks `context`: it goes before the format section; the augmented demo
    # shows every field, separated by blank lines like the long query.
    assert prompt == (
        "Answer questions with short factoid answers.\n\n---\n\n"
        "Question: Who wrote Hamlet?\nAnswer: Shakespeare\n\n---\n\n"
        "Follow the following format.\n\nContext: may contain relevant facts\n\n"
        "Question: ${question}\n\n"
        "Reasoning: Let's think step by step in order to ${produce the answer}. We ...\n\n"
        "Answer: often between 1 and 5 words\n\n---\n\n"
        "Context: «Rome is in Italy.»\n\nQuestion: Capital of Italy?\n\n"
        "Reasoning: Let's think step by step in order to find the capital. Rome is.\n\n"
        "Answer: Rome\n\n---\n\n"
        "Context: «Paris is in France.»\n\nQuestion: Capital of France?\n\n"
        "Reasoning: Let's think step by step in order to"
    )


def test_labeled_demos_missing_fields_join_a_short_query() -> None:
    prompt = first_prompt(
        dspy.Predict("context, question -> answer"),
        demos=[E(question="Who wrote Hamlet?", answer="Shakespeare")],
        context="ctx",
        question="Q?",
    )
    assert prompt == (
        "Given the fields `context`, `question`, produce the fields `answer`.\n\n---\n\n"
        "Follow the following format.\n\nContext: ${context}\nQuestion: ${question}\n"
        "Answer: ${answer}\n\n---\n\n"
        "Question: Who wrote Hamlet?\nAnswer: Shakespeare\n\nContext: ctx\nQuestion: Q?\nAnswer:"
    )


def test_labeled_demos_without_the_last_field_are_dropped() -> None:
    prompt = first_prompt(
        dspy.Predict(ShortQA), demos=[E(question="unanswered")], question="Capital of Italy?"
    )
    assert "unanswered" not in prompt


def test_more_than_three_fields_are_separated_by_blank_lines() -> None:
    prompt = first_prompt(dspy.Predict("a, b, c -> d"), a="1", b="2", c="3")
    assert prompt == (
        "Given the fields `a`, `b`, `c`, produce the fields `d`.\n\n---\n\n"
        "Follow the following format.\n\nA: ${a}\n\nB: ${b}\n\nC: ${c}\n\nD: ${d}\n\n---\n\n"
        "A: 1\n\nB: 2\n\nC: 3\n\nD:"
    )


def test_values_are_whitespace_collapsed() -> None:
    prompt = first_prompt(dspy.Predict("question -> answer"), question="line one\nline  two\t!")
    assert prompt.endswith("\n\nQuestion: line one line two !\nAnswer:")


def test_multi_line_description_makes_the_prompt_long() -> None:
    class MultiDesc(dspy.Signature):
        question = dspy.InputField(desc="first line\nsecond line")
        answer = dspy.OutputField()

    prompt = first_prompt(dspy.Predict(MultiDesc), question="Q?")
    assert prompt == (
        "Given the fields `question`, produce the fields `answer`.\n\n---\n\n"
        "Follow the following format.\n\nQuestion: first line second line\n\n"
        "Answer: ${answer}\n\n---\n\nQuestion: Q?\n\nAnswer:"
    )


def test_prefix_ending_in_newline_puts_the_value_on_the_next_line() -> None:
    class Code(dspy.Signature):
        """Write code."""

        task = dspy.InputField()
        code = dspy.OutputField(prefix="Code:\n")

    prompt = first_prompt(dspy.Predict(Code), task="hello world")
    assert prompt == (
        "Write code.\n\n---\n\nFollow the following format.\n\nTask: ${task}\n\nCode:\n${code}"
        "\n\n---\n\nTask: hello world\n\nCode:"
    )


def test_custom_format_and_answers_formatter() -> None:
    class Fmt(dspy.Signature):
        items = dspy.InputField(format=lambda x: "; ".join(x) if isinstance(x, list) else x)
        answers = dspy.InputField()
        total = dspy.OutputField()

    prompt = first_prompt(dspy.Predict(Fmt), items=["a", "b"], answers=[" first ", "second"])
    assert prompt.endswith("---\n\nItems: a; b\nAnswers: first\nTotal:")


def test_continuation_prompt_fills_in_the_partial_completion() -> None:
    lm = DummyLM(["produce the answer. We know.", "Paris"])
    dspy.configure(lm=lm)
    dspy.ChainOfThought(BasicQA)(context=["c"], question="Q?")
    assert lm.history[1]["prompt"] == (
        "Answer questions with short factoid answers.\n\n---\n\nFollow the following format.\n\n"
        "Context: may contain relevant facts\n\nQuestion: ${question}\n\n"
        "Reasoning: Let's think step by step in order to ${produce the answer}. We ...\n\n"
        "Answer: often between 1 and 5 words\n\n---\n\nContext: «c»\n\nQuestion: Q?\n\n"
        "Reasoning: Let's think step by step in order to produce the answer. We know.\n\nAnswer:"
    )


# ---- the pure template -----------------------------------------------------------------------
def test_adapter_formats_and_parses_without_an_lm() -> None:
    adapter = TemplateAdapter()
    sig = dspy.Signature("question -> rationale, answer")
    prompt = adapter.format(sig, [], {"question": "Q?"})
    assert prompt.endswith("Question: Q?\nRationale:")
    parsed = adapter.parse(sig, {"question": "Q?"}, "  because.\nAnswer:  42 \n")
    assert parsed == {"question": "Q?", "rationale": "because.", "answer": "42"}


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("r\nAnswer: a", {"rationale": "r", "answer": "a"}),
        ("r only", {"rationale": "r only"}),
        ("", {}),
        ("r\nAnswer:", {"rationale": "r"}),
        ("r\nAnswer: a\nAnswer: b", {"rationale": "r", "answer": "a\nAnswer: b"}),
        ("r\nanswer: lower", {"rationale": "r\nanswer: lower"}),
    ],
)
def test_extract_splits_at_the_next_label(completion: str, expected: dict[str, str]) -> None:
    template = template_for(dspy.Signature("question -> rationale, answer"))
    parsed = template.extract({"question": "Q"}, completion)
    assert parsed == {"question": "Q", **expected}


def test_extract_continues_after_the_fields_already_present() -> None:
    template = template_for(dspy.Signature("question -> rationale, answer"))
    parsed = template.extract({"question": "Q", "rationale": "r", "answer": ""}, " Paris\n")
    assert parsed["answer"] == "Paris"


def test_template_is_cached_and_follows_in_place_edits() -> None:
    sig = dspy.Signature("question -> answer")
    first = template_for(sig)
    assert template_for(sig) is first
    sig.fields["answer"].json_schema_extra["prefix"] = "Final:"
    assert template_for(sig) is not first
    assert template_for(sig).format([], {"question": "q"}).endswith("Final:")


def test_passages_and_answers_formatters() -> None:
    assert passages2text("as is") == "as is"
    assert passages2text(("a", "b")) == "[1] «a»\n[2] «b»"
    assert format_answers(["  x ", "y"]) == "x"
    with pytest.raises(ValueError, match="No answers"):
        format_answers([])


def test_non_string_values_are_rendered_with_str() -> None:
    template = Template("Add.", [("a", "A:", "${a}", None), ("b", "B:", "${b}", None)])
    assert template.format([], {"a": 12}).endswith("A: 12\nB:")
