"""Module: parameter discovery and names (DSPy 2.4.17's), copies, save and load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.utils.dummies import DummyLM


class Pipeline(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = dspy.Predict("question -> search_query")
        self.cot = dspy.ChainOfThought("question -> answer")
        self.hops = [dspy.Predict("a -> b"), dspy.Predict("b -> c")]
        self.by_name = {"x": dspy.Predict("x -> y")}
        self.alias = self.query  # the same predictor twice is one parameter

    def forward(self, question: str) -> Any:
        return self.cot(question=self.query(question=question).search_query)


class Outer(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Pipeline()
        self.frozen = Pipeline()
        self.frozen._compiled = True


def test_parameter_names() -> None:
    program = Pipeline()
    names = [name for name, _ in program.named_parameters()]
    assert names == ["query", "cot", "hops[0]", "hops[1]", "by_name['x']"]
    assert program.named_predictors()[1][1] is program.cot._predict
    assert program.predictors() == program.parameters()


def test_bare_chain_of_thought_and_predict_are_named_self() -> None:
    assert [n for n, _ in dspy.ChainOfThought("q -> a").named_predictors()] == ["self"]
    predictor = dspy.Predict("q -> a")
    assert predictor.named_predictors() == [("self", predictor)]


def test_nested_modules_and_compiled_ones_are_frozen() -> None:
    names = [name for name, _ in Outer().named_parameters()]
    assert names == [
        "inner.query",
        "inner.cot",
        "inner.hops[0]",
        "inner.hops[1]",
        "inner.by_name['x']",
    ]


def test_named_sub_modules() -> None:
    program = Outer()
    names = [name for name, _ in program.named_sub_modules()]
    assert names[:3] == ["self", "self.inner", "self.frozen"]
    assert "self.inner.cot" in names
    predictors = [name for name, _ in program.named_sub_modules(dspy.Predict, skip_compiled=True)]
    assert "self.inner.query" in predictors
    assert not any(name.startswith("self.frozen.") for name in predictors)


def test_deepcopy_and_reset_copy() -> None:
    program = Pipeline()
    program.query.demos = [dspy.Example(question="q", search_query="s")]
    program.query.lm = lm = DummyLM([])
    clone = program.deepcopy()
    assert clone.query is not program.query
    assert clone.query.demos == program.query.demos
    assert clone.query.lm is lm
    assert clone.alias is clone.query
    fresh = program.reset_copy()
    assert fresh.query.demos == [] and fresh.query.lm is None
    assert program.query.demos != []


def test_deepcopy_falls_back_for_uncopyable_attributes() -> None:
    import threading

    program = Pipeline()
    program.lock = threading.Lock()  # not deep-copyable
    clone = program.deepcopy()
    assert clone.lock is program.lock
    assert clone.query is not program.query


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    program = Pipeline()
    program.cot.demos = [
        dspy.Example(question="q", rationale="r", answer="a", augmented=True),
    ]
    path = tmp_path / "state.json"
    program.save(path)
    loaded = Pipeline()
    loaded.load(path)
    assert loaded.dump_state() == program.dump_state()
    assert loaded.cot.demos[0].augmented is True


def test_map_named_predictors_and_lm_helpers() -> None:
    program = Pipeline()
    lm = DummyLM([])
    program.set_lm(lm)
    assert program.get_lm() is lm
    program.query.lm = None
    with pytest.raises(ValueError, match="Multiple"):
        program.get_lm()
    replacement = dspy.Predict("question -> search_query")
    program.map_named_predictors(lambda p: replacement if p is program.query else p)
    assert program.query is replacement
    assert program.hops[1] is not replacement


def test_repr_lists_predictors() -> None:
    text = repr(Pipeline())
    assert text.startswith("query = Predict(StringSignature(question -> search_query")
    assert "\ncot = Predict(StringSignature(question -> rationale, answer" in text


def test_bad_state_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="dict"):
        Pipeline().load_state([])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dict"):
        dspy.Predict("a -> b").load_state("x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Example objects or dicts"):
        predictor = dspy.Predict("a -> b")
        predictor.demos = ["not a demo"]
        dspy.configure(lm=DummyLM(["x"]))
        predictor(a="1")
