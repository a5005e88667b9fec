"""Example, Prediction and Completions behave as DSPy 2.4's."""

from __future__ import annotations

import copy
import pickle

import pytest

import tgispy as dspy


def test_example_access_and_mutation() -> None:
    ex = dspy.Example(question="q", answer="a")
    assert ex.question == ex["question"] == ex.get("question") == "q"
    assert ex.get("missing", 7) == 7
    ex.extra = 1
    ex["other"] = 2
    assert ex.toDict() == {"question": "q", "answer": "a", "extra": 1, "other": 2}
    del ex["other"]
    assert "other" not in ex and "extra" in ex
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = ex.missing
    with pytest.raises(KeyError):
        _ = ex["missing"]


def test_example_from_a_base() -> None:
    base = dspy.Example(a=1)
    assert dspy.Example(base, b=2).toDict() == {"a": 1, "b": 2}
    assert dspy.Example({"a": 1}, b=2).toDict() == {"a": 1, "b": 2}
    assert base.toDict() == {"a": 1}


def test_inputs_and_labels() -> None:
    ex = dspy.Example(question="q", context="c", answer="a").with_inputs("question", "context")
    assert ex.inputs().toDict() == {"question": "q", "context": "c"}
    assert ex.labels().toDict() == {"answer": "a"}
    assert ex.inputs()._input_keys == {"question", "context"}
    with pytest.raises(ValueError, match="with_inputs"):
        dspy.Example(question="q").inputs()


def test_copy_without_and_input_keys() -> None:
    ex = dspy.Example(question="q", answer="a").with_inputs("question")
    copied = ex.copy(answer="b")
    assert copied.answer == "b" and ex.answer == "a"
    assert copied._input_keys is None  # as in DSPy 2.4, copy() does not keep input keys
    assert ex.without("answer").toDict() == {"question": "q"}


def test_dspy_keys_are_hidden() -> None:
    ex = dspy.Example(question="q", dspy_uuid="x", dspy_split="train")
    assert len(ex) == 1
    assert ex.keys() == ["question"]
    assert ex.keys(include_dspy=True) == ["question", "dspy_uuid", "dspy_split"]
    assert ex.values() == ["q"] and ex.items() == [("question", "q")]
    assert repr(ex) == "Example({'question': 'q'}) (input_keys=None)"
    assert list(ex) == ["question", "dspy_uuid", "dspy_split"]


def test_equality_and_hash() -> None:
    a = dspy.Example(question="q").with_inputs("question")
    b = dspy.Example(question="q")
    assert a == b and hash(a) == hash(b)
    assert a != dspy.Example(question="other")
    assert a != {"question": "q"}
    assert len({a, b}) == 1


def test_repr_with_input_keys() -> None:
    ex = dspy.Example(question="q").with_inputs("question")
    assert repr(ex) == str(ex) == "Example({'question': 'q'}) (input_keys={'question'})"


def test_examples_pickle_and_deepcopy() -> None:
    ex = dspy.Example(question="q", nested=["x"]).with_inputs("question")
    for clone in (pickle.loads(pickle.dumps(ex)), copy.deepcopy(ex)):
        assert clone == ex and clone._input_keys == {"question"}
        assert clone.nested is not ex.nested


def test_prediction_from_completions() -> None:
    pred = dspy.Prediction.from_completions(
        [{"rationale": "r1", "answer": "a1"}, {"rationale": "r2", "answer": "a2"}]
    )
    assert pred.answer == "a1"
    assert pred.completions is not None
    assert pred.completions.answer == ["a1", "a2"]
    assert pred.completions["rationale"] == ["r1", "r2"]
    assert pred.completions[1].answer == "a2"
    assert isinstance(pred.completions[1], dspy.Prediction)
    assert "answer" in pred.completions
    assert repr(pred) == (
        "Prediction(\n    rationale='r1',\n    answer='a1',\n    completions=Completions(...)\n) "
        "(1 completions omitted)"
    )
    assert repr(pred.completions) == (
        "Completions(\n    rationale=['r1', 'r2'],\n    answer=['a1', 'a2']\n)"
    )
    with pytest.raises(IndexError):
        pred.completions[2]
    with pytest.raises(AttributeError):
        _ = pred.completions.missing


def test_single_prediction_repr_and_missing_example_features() -> None:
    pred = dspy.Prediction(answer="x")
    assert repr(pred) == "Prediction(\n    answer='x'\n)"
    assert pred.completions is None
    with pytest.raises(AttributeError):
        pred.inputs()


def test_completions_from_a_dict_and_validation() -> None:
    completions = dspy.Completions({"answer": ["a", "b"]})
    assert len(completions) == 2
    with pytest.raises(ValueError, match="lists"):
        dspy.Completions({"answer": "a"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="same length"):
        dspy.Completions({"a": [1], "b": [1, 2]})
    assert len(dspy.Completions([])) == 0
