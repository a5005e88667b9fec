"""DSPy 3.4 programs on the real llama.cpp server through ``dspy.LM(engine=...)``.

Real HTTP to the session's llama.cpp server (tests/_llama_server.py, SmolLM2-135M on
127.0.0.1); generations stay a few dozen tokens long.
"""

from __future__ import annotations

import json

import pytest

from ._gate import import_dspy

dspy = import_dspy()

from dspy.lm15 import Config, Message, Request  # noqa: E402

from _llama_server import LlamaServer  # noqa: E402  (tests/ is on sys.path)
from tgispy.integrations.dspy import fleet_lm, tgi_lm  # noqa: E402

pytestmark = pytest.mark.usefixtures("dspy_memory_cache")


class Sum(dspy.Signature):
    """Add the numbers."""

    question: str = dspy.InputField()
    answer: int = dspy.OutputField()


def test_dspy_predict_runs_on_llamacpp_with_schema_constrained_output(
    llama_server: LlamaServer,
) -> None:
    lm = tgi_lm("llamacpp/smollm2", llama_server.url, engine="llamacpp", cache=False, max_tokens=48)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = dspy.Predict(Sum)(question="What is 2 + 2?")
    assert isinstance(pred.answer, int)  # the json_schema constraint made the output parse
    entry = lm.history[-1]
    response = entry["response"]
    assert response.finish_reason == "stop"
    assert set(json.loads(response.text)) == {"answer"}
    assert response.provider_data["llamacpp"]["replica"] == llama_server.url
    assert response.provider_data["llamacpp"]["endpoint"] == "/v1/chat/completions"
    assert entry["usage"]["prompt_tokens"] > 0 and entry["usage"]["completion_tokens"] > 0
    assert lm.engine.stats()[llama_server.url]["requests"] == 1


async def test_auto_detects_llamacpp_and_streams_what_it_completes(
    llama_server: LlamaServer,
) -> None:
    lm = fleet_lm("smollm2", llama_server.url + "/v1", cache=False)
    engine = lm.engine.aio  # the async engine, as dspy.LM(async_engine=...) has it
    request = Request(
        model="smollm2",
        messages=(Message.user("Name three colors."),),
        config=Config(max_tokens=8),
    )
    complete = await engine.complete(request)
    assert engine.dialect == "llamacpp"  # found by probing /v1/models (llama.cpp's Server header)
    assert (complete.finish_reason, complete.usage.output_tokens) == ("length", 8)
    events = [event async for event in engine.stream(request)]
    assert events[0].type == "start" and events[-1].type == "end"
    streamed = "".join(e.delta.text for e in events if e.type == "delta")
    assert streamed == complete.text  # greedy: the same tokens either way
    assert (events[-1].finish_reason, events[-1].usage.output_tokens) == ("length", 8)
