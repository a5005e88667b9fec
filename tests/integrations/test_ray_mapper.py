"""The per-worker half of map_program (no Ray needed): a batch against a scripted TGI."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.integrations._ray_map import ProgramBatchMapper
from tgispy.testing import Recorded, Reply, ScriptedTGI
from tgispy.tgi import RetryPolicy


def test_a_batch_comes_back_row_for_row_with_predictions_and_error_kinds() -> None:
    def answer(rec: Recorded) -> Reply:
        asked = rec.json["inputs"].rsplit("Question:", 1)[-1]
        if "Atlantis" in asked:
            return Reply.error(422, "Input validation error: no such place", "validation")
        if "Lemuria" in asked:
            return Reply.error(503, "Model is loading", "unavailable")
        return Reply.generate(" Paris" if "France" in asked else " Rome", prompt_tokens=3)

    with ScriptedTGI(answer) as server:
        lm = functools.partial(
            dspy.HFClientTGI,
            model="m",
            port=None,
            url=[server.url],
            cache=False,
            retry=RetryPolicy(max_attempts=1),
        )
        mapper = ProgramBatchMapper(
            dspy.Predict("question -> answer"),
            lm,
            inputs=["question"],
            max_in_flight=2,
            metric=lambda example, pred: pred.answer == example.answer,
        )
        out = mapper(
            {
                "question": ["France?", "Atlantis?", "Italy?", "Lemuria?"],
                "answer": ["Paris", "-", "Paris", "-"],
            }
        )

    assert out["question"] == ["France?", "Atlantis?", "Italy?", "Lemuria?"]
    assert out["pred_answer"] == ["Paris", None, "Rome", None]  # "answer" is an input column
    assert out["score"] == [1.0, 0.0, 0.0, 0.0]
    assert out["error_kind"] == [None, "program", None, "infra"]
    assert out["error"][1].startswith("ValidationError: Input validation error: no such place")
    assert out["error"][3].startswith("UnavailableError: Model is loading")
    assert all(isinstance(v, float) and v >= 0 for v in out["latency_s"])
    assert len(server.requests) >= 4


def test_numpy_columns_and_a_program_class_built_in_the_worker() -> None:
    numpy = pytest.importorskip("numpy")
    from tgispy.utils.dummies import DummyLM

    class QA(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.predict = dspy.Predict("question -> answer")

        def forward(self, question: str) -> dspy.Prediction:
            return self.predict(question=question)

    # answers keyed by question: the mapper runs examples concurrently, in no fixed order
    answers = {"2+2?": "4", "3+3?": "6"}
    mapper = ProgramBatchMapper(QA, lambda: DummyLM(answers), inputs=["question"])
    out = mapper({"question": numpy.array(["2+2?", "3+3?"])})
    assert out == {
        "question": ["2+2?", "3+3?"],
        "answer": ["4", "6"],
        "error": [None, None],
        "error_kind": [None, None],
        "latency_s": out["latency_s"],
    }


def test_missing_columns_and_inputs_are_named() -> None:
    from tgispy.utils.dummies import DummyLM

    with pytest.raises(ConfigError, match="needs the input columns"):
        ProgramBatchMapper(dspy.Predict("q -> a"), DummyLM, inputs=[])
    mapper = ProgramBatchMapper(dspy.Predict("q -> a"), lambda: DummyLM(["x"]), inputs=["q"])
    with pytest.raises(ConfigError, match="no column 'q'; its columns are \\['text'\\]"):
        mapper({"text": ["hi"]})
    assert mapper({"q": []}) == {"q": [], "error": [], "error_kind": [], "latency_s": []}


def test_at_most_max_in_flight_examples_run_at_once_per_worker() -> None:
    lock = threading.Lock()
    both = threading.Barrier(2, timeout=10)  # fails unless two run at once
    running = peak = 0

    def program(question: str) -> dspy.Prediction:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        both.wait()
        with lock:
            running -= 1
        return dspy.Prediction(answer=question.upper())

    mapper = ProgramBatchMapper(program, None, inputs=["question"], max_in_flight=2)
    out = mapper({"question": [f"q{i}" for i in range(6)]})
    assert out["answer"] == [f"Q{i}" for i in range(6)] and peak == 2


def test_without_ray_the_import_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "try:\n"
        "    import tgispy.integrations.ray\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'tgispy[ray]'" in out.stdout
