"""Predict and ChainOfThought: continuation, n > 1, traces, state, and the sync/async faces."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError, ParseError
from tgispy.utils.dummies import DummyLM


def configure(script: list[str]) -> DummyLM:
    lm = DummyLM(script)
    dspy.configure(lm=lm)
    return lm


def call(module: Any, face: str, **inputs: Any) -> Any:
    if face == "sync":
        return module(**inputs)
    return asyncio.run(module.acall(**inputs))


FACES = ["sync", "async"]


# ---- continuation ----------------------------------------------------------------------------
@pytest.mark.parametrize("face", FACES)
def test_chain_of_thought_with_line_by_line_answers_costs_two_requests(face: str) -> None:
    # With the seed's stop=["\n", "\n\n"] a completion ends at the first newline: the rationale.
    lm = configure(["produce the answer. We know Paris is the capital.", "Paris"])
    pred = call(dspy.ChainOfThought("question -> answer"), face, question="Capital of France?")
    assert pred.rationale == "produce the answer. We know Paris is the capital."
    assert pred.answer == "Paris"
    assert len(lm.history) == 2
    second = lm.history[1]
    assert second["prompt"].endswith(
        "Reasoning: Let's think step by step in order to produce the answer. We know Paris is "
        "the capital.\nAnswer:"
    )
    assert second["raw_kwargs"] == {"max_tokens": 75, "n": 1, "temperature": 0.0}


def test_continuation_halves_large_max_tokens() -> None:
    lm = configure(["r", "a"])
    dspy.ChainOfThought("question -> answer", max_tokens=400)(question="q")
    assert lm.history[0]["raw_kwargs"] == {"max_tokens": 400}
    assert lm.history[1]["raw_kwargs"] == {"max_tokens": 200, "n": 1, "temperature": 0.0}


def test_continuation_uses_the_lm_default_max_tokens() -> None:
    lm = configure(["r", "a"])
    lm.kwargs["max_tokens"] = 60
    dspy.ChainOfThought("question -> answer")(question="q")
    assert lm.history[1]["raw_kwargs"]["max_tokens"] == 60


def test_an_empty_completion_fills_the_continued_field_with_empty_text() -> None:
    # DSPy 2.4: the field a continuation starts is set to "" and counts as produced.
    lm = configure(["", ""])
    assert dspy.Predict("question -> answer")(question="q").answer == ""
    assert len(lm.history) == 2


def test_at_most_two_continuations_then_a_parse_error() -> None:
    lm = configure(["", "", "", "never"])
    with pytest.raises(ParseError, match="'c'") as info:
        dspy.Predict("question -> a, b, c")(question="q")
    assert len(lm.history) == 3
    assert info.value.completion == ""


def test_completion_holding_every_field_is_one_request() -> None:
    lm = configure(["produce it. Because.\nAnswer: Paris"])
    pred = dspy.ChainOfThought("question -> answer")(question="q")
    assert (pred.rationale, pred.answer) == ("produce it. Because.", "Paris")
    assert len(lm.history) == 1


# ---- n > 1 ---------------------------------------------------------------------------------
def test_n_greater_than_one_raises_a_greedy_temperature() -> None:
    lm = configure(["r1\nAnswer: a1", "r2\nAnswer: a2", "r3\nAnswer: a3"])
    pred = dspy.ChainOfThought("question -> answer", n=3)(question="q")
    assert lm.history[0]["raw_kwargs"] == {"n": 3, "temperature": 0.7}
    assert pred.answer == "a1"
    assert pred.completions.answer == ["a1", "a2", "a3"]
    assert pred.completions.rationale == ["r1", "r2", "r3"]
    assert len(pred.completions) == 3
    assert repr(pred).endswith("(2 completions omitted)")


def test_n_greater_than_one_keeps_a_warm_temperature() -> None:
    lm = configure(["a", "b"])
    dspy.Predict("question -> answer", n=2, temperature=0.5)(question="q")
    assert lm.history[0]["raw_kwargs"] == {"n": 2, "temperature": 0.5}


def test_completions_that_stop_short_are_dropped() -> None:
    configure(["r1", "r2\nAnswer: a2", "r3\nAnswer: a3"])
    pred = dspy.ChainOfThought("question -> answer", n=3)(question="q")
    assert pred.completions.answer == ["a2", "a3"]
    assert pred.answer == "a2"


def test_n_greater_than_one_all_short_continues_the_first() -> None:
    lm = configure(["r1", "r2", "a1"])
    pred = dspy.ChainOfThought("question -> answer", n=2)(question="q")
    assert len(lm.history) == 2
    assert "in order to r1\nAnswer:" in lm.history[1]["prompt"]
    assert pred.completions.answer == ["a1"]


# ---- call arguments ------------------------------------------------------------------------
def test_no_lm_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"configure\(lm="):
        dspy.Predict("question -> answer")(question="q")


def test_lm_argument_and_predictor_lm_override_the_configured_one() -> None:
    configured = configure(["from configured"])
    own = DummyLM(["from own"])
    passed = DummyLM(["from argument"])
    predictor = dspy.Predict("question -> answer")
    assert predictor(question="q", lm=passed).answer == "from argument"
    predictor.lm = own
    assert predictor(question="q").answer == "from own"
    assert configured.history.snapshot() == []


def test_demos_config_and_new_signature_arguments() -> None:
    lm = configure(["x", "y"])
    predictor = dspy.Predict("question -> answer", max_tokens=10)
    predictor(question="q", demos=[dspy.Example(question="d", answer="e")], config={"stop": ["\n"]})
    assert lm.history[0]["raw_kwargs"] == {"max_tokens": 10, "stop": ["\n"]}
    assert "Question: d\nAnswer: e" in lm.history[0]["prompt"]
    pred = predictor(question="q", new_signature="question -> reply")
    assert pred.reply == "y"


def test_missing_input_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    configure(["x"])
    with caplog.at_level(logging.WARNING):
        dspy.Predict("context, question -> answer")(question="q")
    assert "Missing: ['context']" in caplog.text


def test_outputs_passed_as_inputs_are_not_predicted() -> None:
    configure(["produce it.\nAnswer: ignored"])
    pred = dspy.ChainOfThought("question -> answer")(question="q", answer="given")
    assert dict(pred.items()) == {"rationale": "produce it."}


def test_lm_returning_non_strings_is_a_parse_error() -> None:
    class Bad(dspy.LM):
        async def acall(self, prompt: str, *args: Any, **kwargs: Any) -> list[Any]:
            return [{"text": "x"}]

    dspy.configure(lm=Bad("bad"))
    with pytest.raises(ParseError, match="dict"):
        dspy.Predict("question -> answer")(question="q")


def test_sync_only_lm_written_for_dspy_24_works() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class OldStyle:
        def __init__(self) -> None:
            self.kwargs = {"temperature": 0.0, "max_tokens": 150, "n": 1}

        def __call__(self, prompt: str, **kwargs: Any) -> list[str]:
            calls.append((prompt, kwargs))
            return ["42"]

    dspy.configure(lm=OldStyle())
    assert dspy.Predict("question -> answer")(question="q").answer == "42"
    assert calls[0][0].endswith("Question: q\nAnswer:")


# ---- traces ----------------------------------------------------------------------------------
def test_trace_records_predictor_inputs_and_prediction() -> None:
    configure(["r\nAnswer: a", "b"])
    cot = dspy.ChainOfThought("question -> answer")
    trace: list[Any] = []
    with dspy.context(trace=trace):
        pred = cot(question="q")
        dspy.Predict("question -> answer")(question="q2", _trace=False)
    assert trace == [(cot._predict, {"question": "q"}, pred)]


def test_no_trace_by_default() -> None:
    configure(["a"])
    dspy.Predict("question -> answer")(question="q")
    assert dspy.settings.trace is None


# ---- state -----------------------------------------------------------------------------------
class RAG(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generate_query = dspy.Predict("question -> search_query")
        self.generate_answer = dspy.ChainOfThought("context, question -> answer")

    def forward(self, question: str) -> Any:
        query = self.generate_query(question=question).search_query
        return self.generate_answer(context=[query, "more"], question=question)


def compiled_rag() -> RAG:
    program = RAG()
    query, answer = (p for _, p in program.named_predictors())
    query.demos = [dspy.Example(question="Q1?", search_query="sq1")]
    answer.demos = [
        dspy.Example(question="Who?", answer="Me"),
        dspy.Example(
            context=["c1"], question="What?", rationale="think.", answer="That", augmented=True
        ),
    ]
    query.signature = query.signature.with_instructions("Write a query.").with_updated_fields(
        "search_query", prefix="Query:"
    )
    answer.extended_signature = answer.extended_signature.with_instructions(
        "Be brief."
    ).with_updated_fields("answer", prefix="Short Answer:")
    return program


def prompts_of(program: RAG) -> list[str]:
    lm = configure(["sq", "produce it.\nShort Answer: X"])
    program(question="Where?")
    return [entry["prompt"] for entry in lm.history]


def test_saved_and_loaded_program_sends_byte_identical_prompts(tmp_path: Path) -> None:
    program = compiled_rag()
    expected = prompts_of(program)
    assert expected[0].startswith("Write a query.") and "Short Answer:" in expected[1]
    path = tmp_path / "program.json"
    program.save(path)
    loaded = RAG()
    loaded.load(path)
    assert prompts_of(loaded) == expected
    assert isinstance(loaded.generate_answer.demos[1], dspy.Example)


def test_state_layout_is_dspy_2_4s() -> None:
    state = compiled_rag().dump_state()
    assert list(state) == ["generate_query", "generate_answer"]
    assert state["generate_query"] == {
        "lm": None,
        "traces": [],
        "train": [],
        "demos": [{"question": "Q1?", "search_query": "sq1"}],
        "signature_instructions": "Write a query.",
        "signature_prefix": "Query:",
    }
    answer = state["generate_answer"]
    assert answer["extended_signature_instructions"] == "Be brief."
    assert answer["extended_signature_prefix"] == "Short Answer:"
    assert answer["signature_prefix"] == "Answer:"
    json.dumps(state)  # JSON-ready


def test_loads_a_state_file_written_by_dspy_2_4() -> None:
    # Written by dspy-ai 2.4.17's Module.save for the same program (demos come back as dicts).
    state = {
        "generate_query": {
            "lm": None,
            "traces": [],
            "train": [],
            "demos": [{"question": "Q1?", "search_query": "sq1"}],
            "signature_instructions": "Write a query.",
            "signature_prefix": "Query:",
        },
        "generate_answer": {
            "lm": None,
            "traces": [],
            "train": [],
            "demos": [
                {"question": "Who?", "answer": "Me"},
                {
                    "context": ["c1"],
                    "question": "What?",
                    "rationale": "think.",
                    "answer": "That",
                    "augmented": True,
                },
            ],
            "signature_instructions": "Given the fields `context`, `question`, produce the "
            "fields `answer`.",
            "signature_prefix": "Answer:",
            "extended_signature_instructions": "Be brief.",
            "extended_signature_prefix": "Short Answer:",
        },
    }
    program = RAG()
    program.load_state(state)
    assert prompts_of(program) == prompts_of(compiled_rag())


def test_load_state_names_missing_entries() -> None:
    with pytest.raises(ConfigError, match="generate_answer"):
        RAG().load_state({"generate_query": {}})


def test_cot_state_into_a_predict_is_refused() -> None:
    cot_state = dspy.ChainOfThought("question -> answer").dump_state()["self"]
    with pytest.raises(ConfigError, match="ChainOfThought"):
        dspy.Predict("question -> answer").load_state(cot_state)


def test_save_verbose_lists_every_field() -> None:
    state = dspy.Predict("question -> answer").dump_state(save_verbose=True)
    assert state["fields"] == [
        {
            "name": "question",
            "field_type": "input",
            "description": "${question}",
            "prefix": "Question:",
        },
        {"name": "answer", "field_type": "output", "description": "${answer}", "prefix": "Answer:"},
    ]


def test_reset_forgets_demos_and_lm() -> None:
    predictor = dspy.Predict("question -> answer")
    predictor.demos = [dspy.Example(question="q", answer="a")]
    predictor.lm = DummyLM([])
    predictor.reset()
    assert (predictor.demos, predictor.lm, predictor.traces, predictor.train) == ([], None, [], [])


def test_deepcopy_shares_the_lm_and_copies_demos() -> None:
    predictor = dspy.Predict("question -> answer")
    predictor.lm = DummyLM([])
    predictor.demos = [dspy.Example(question="q", answer="a")]
    clone = copy.deepcopy(predictor)
    assert clone.lm is predictor.lm
    assert clone.demos == predictor.demos and clone.demos is not predictor.demos


def test_chain_of_thought_surface() -> None:
    cot = dspy.ChainOfThought("question -> answer", temperature=0.3)
    assert list(cot.extended_signature.fields) == ["question", "rationale", "answer"]
    rationale = cot.extended_signature.fields["rationale"].json_schema_extra
    assert rationale["prefix"] == "Reasoning: Let's think step by step in order to"
    assert rationale["desc"] == "${produce the answer}. We ..."
    cot.demos = [dspy.Example(question="q", answer="a")]
    assert cot._predict.demos == cot.demos
    assert cot._predict.config == {"temperature": 0.3}
    with pytest.raises(ConfigError, match="output field"):
        dspy.ChainOfThought(dspy.Signature({"q": dspy.InputField()}))


def test_deactivated_chain_of_thought_has_no_rationale() -> None:
    lm = configure(["a"])
    pred = dspy.ChainOfThought("question -> answer", activated=False)(question="q")
    assert dict(pred.items()) == {"answer": "a"}
    assert "Reasoning" not in lm.history[0]["prompt"]


# ---- concurrency ---------------------------------------------------------------------------
async def test_many_concurrent_async_calls_keep_their_own_inputs() -> None:
    dspy.configure(lm=DummyLM({f"Question: q{i}\n": f"a{i}" for i in range(50)}))
    predictor = dspy.Predict("question -> answer")
    preds = await asyncio.gather(*(predictor.acall(question=f"q{i}") for i in range(50)))
    assert [p.answer for p in preds] == [f"a{i}" for i in range(50)]


async def test_sync_module_can_be_awaited() -> None:
    configure(["sq", "produce it.\nAnswer: X"])
    pred = await RAG().acall(question="q")
    assert pred.answer == "X"


def test_async_only_module_can_be_called_synchronously() -> None:
    class AsyncQA(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qa = dspy.Predict("question -> answer")

        async def aforward(self, question: str) -> Any:
            return await self.qa.acall(question=question)

    configure(["42"])
    assert AsyncQA()(question="q").answer == "42"
    with pytest.raises(NotImplementedError):
        dspy.Module()()


def test_a_configured_adapter_formats_and_parses() -> None:
    class Shouting(dspy.adapters.TemplateAdapter):
        def format(self, signature: Any, demos: Any, example: Any) -> str:
            return super().format(signature, demos, example).upper()

    lm = configure(["42"])
    with dspy.context(adapter=Shouting()):
        pred = dspy.Predict("question -> answer")(question="what?")
    assert pred.answer == "42"
    assert lm.history[0]["prompt"].endswith("QUESTION: WHAT?\nANSWER:")
