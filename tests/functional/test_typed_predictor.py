"""Typed predictors beyond the recorded DSPy 2.4 programs: grammars on a TGI server, the async
face, ujson's error messages, copies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

import tgispy as dspy
from tgispy.functional import FunctionalModule, TypedPredictor, predictor
from tgispy.functional._functional import field_grammar, prepare_signature
from tgispy.functional._json import JSONDecodeError, loads_like_ujson
from tgispy.lm._tgi import HFClientTGI
from tgispy.testing import DEFAULT_INFO, Reply, ScriptedTGI
from tgispy.utils.dummies import DummyLM

OLD_INFO = {**DEFAULT_INFO, "version": "1.3.4"}  # TGI before grammars


class Point(pydantic.BaseModel):
    x: int
    y: int


class PointSig(dspy.Signature):
    """Locate it."""

    description: str = dspy.InputField()
    point: Point = dspy.OutputField()


@pytest.fixture
def servers() -> Iterator[list[ScriptedTGI]]:
    started: list[ScriptedTGI] = []
    yield started
    for server in started:
        server.stop()


def _lm(servers: list[ScriptedTGI], replies: list[Reply], info: Any = DEFAULT_INFO) -> Any:
    server = ScriptedTGI(replies, info=info).start()
    servers.append(server)
    lm = HFClientTGI(model="m", port=server.port, url="http://127.0.0.1", cache=False)
    return lm, server


def _prompt_with_dummy(program_factory: Any, **inputs: Any) -> str:
    lm = DummyLM(["0"])
    with dspy.context(lm=lm), contextlib.suppress(ValueError):
        program_factory()(**inputs)
    return str(lm.history[0]["prompt"])


def test_int_output_gets_a_regex_grammar_and_the_2_4_prompt(servers: list[ScriptedTGI]) -> None:
    lm, server = _lm(servers, [Reply.generate(" 42")])
    dspy.configure(lm=lm)
    pred = TypedPredictor("question -> answer: int")(question="6 times 7?")
    assert pred.answer == 42
    (request,) = [r for r in server.requests if r.path == "/generate"]
    assert request.json["parameters"]["grammar"] == {"type": "regex", "value": " ?-?[0-9]+\\n?"}
    expected = _prompt_with_dummy(
        lambda: TypedPredictor("question -> answer: int"), question="6 times 7?"
    )
    assert request.json["inputs"] == expected


def test_model_output_gets_a_json_grammar(servers: list[ScriptedTGI]) -> None:
    lm, server = _lm(servers, [Reply.generate('{"x": 1, "y": 2}')])
    dspy.configure(lm=lm)
    assert TypedPredictor(PointSig)(description="top left").point == Point(x=1, y=2)
    (request,) = [r for r in server.requests if r.path == "/generate"]
    grammar = request.json["parameters"]["grammar"]
    assert lm.kwargs.get("stop")  # the client's default stop ...
    assert "stop" not in request.json["parameters"]  # ... would cut multi-line JSON: dropped
    assert grammar["type"] == "json"
    assert grammar["value"]["properties"] == Point.model_json_schema()["properties"]


def test_old_server_gets_no_grammar_and_the_retry_loop(servers: list[ScriptedTGI]) -> None:
    lm, server = _lm(servers, [Reply.generate(" forty two"), Reply.generate(" 42")], OLD_INFO)
    dspy.configure(lm=lm)
    assert TypedPredictor("question -> answer: int")(question="6 times 7?").answer == 42
    first, second = [r for r in server.requests if r.path == "/generate"]
    assert "grammar" not in first.json["parameters"]
    assert (
        'Past Error in Answer: ValueError("invalid literal for int() with base 10: '
        in (second.json["inputs"])
    )


def test_grammars_per_type() -> None:
    def grammar(sig: str) -> Any:
        return field_grammar(prepare_signature(dspy.Signature(sig)))

    assert grammar("q -> a: bool") == {"type": "regex", "value": " ?(true|false)\\n?"}
    assert grammar("q -> a: float")["type"] == "regex"
    assert grammar("q -> a: list[int]") == {
        "type": "json",
        "value": {"items": {"type": "integer"}, "type": "array"},
    }
    assert grammar("q -> a") is None  # str: nothing to constrain
    assert grammar("q -> a: int, b: int") is None  # several fields: the 2.4 text format
    wrapped = prepare_signature(dspy.Signature("q -> a: list[int]"), wrap_json=True)
    assert field_grammar(wrapped) is None


def test_async_face_and_failure_is_a_value_error() -> None:
    dspy.configure(lm=DummyLM(["x", "y"]))
    program = TypedPredictor("question -> answer: int", max_retries=2)
    with pytest.raises(ValueError, match="Too many retries") as info:
        asyncio.run(program.acall(question="N?"))
    assert isinstance(info.value, dspy.ParseError)
    assert set(info.value.errors) == {"answer"}  # type: ignore[attr-defined]
    dspy.configure(lm=DummyLM(["7"]))
    assert asyncio.run(program.acall(question="N?")).answer == 7


def test_functional_module_instances_get_their_own_predictors() -> None:
    class Calc(FunctionalModule):
        @predictor
        def double(self, number: int) -> int:
            """Double the number."""

    a, b = Calc(), Calc()
    assert a.double is not b.double and a.double.predictor is not b.double.predictor
    assert [name for name, _ in a.named_predictors()] == ["double.predictor.predictor"]


# ujson's messages, recorded from the dspy-ai 2.4.17 environment (ujson 6.1.0).
UJSON_ERRORS = [
    ("not json", "Unexpected character found when decoding 'null'"),
    ("", "Expected object or value"),
    ("  ", "Expected object or value"),
    ("The answer", "Expected object or value"),
    ("{a: 1}", "Expected object or value"),
    ('{"a": 1} trailing', "Trailing data"),
    ("12abc", "Trailing data"),
    ("fals", "Unexpected character found when decoding 'false'"),
    ("tru", "Unexpected character found when decoding 'true'"),
    ("Infinit", "Unexpected character found when decoding 'Infinity'"),
    ('{"a": 1,}', "Unexpected character in found when decoding object value"),
    ('{"a": 1', "Unexpected character in found when decoding object value"),
    ('{"a": "x, y" 2}', "Unexpected character in found when decoding object value"),
]


@pytest.mark.parametrize(("text", "message"), UJSON_ERRORS)
def test_json_errors_read_like_ujson(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        loads_like_ujson(text)
    assert repr(info.value) == repr(JSONDecodeError(message))


def test_valid_json_decodes() -> None:
    assert loads_like_ujson(' {"a": [1, 2.5, null]} ') == json.loads('{"a": [1, 2.5, null]}')
