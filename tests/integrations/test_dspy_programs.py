"""DSPy 3.4 programs on TGI through tgispy: Predict, ChainOfThought, Evaluate and an optimizer,
with ChatAdapter and JSONAdapter, against scripted replicas and the ``tgispy serve`` server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._gate import import_dspy

dspy = import_dspy()

from tgispy.integrations.dspy import RoutingPolicy, tgi_lm  # noqa: E402
from tgispy.server import start_server  # noqa: E402
from tgispy.server._process import ServerHandle  # noqa: E402
from tgispy.testing import ScriptedTGI  # noqa: E402

from ._scripted import Oracle, chat_adapter_text, last_question  # noqa: E402
from .conftest import posts  # noqa: E402

pytestmark = pytest.mark.usefixtures("dspy_memory_cache")

Start = Callable[..., ScriptedTGI]
ANSWERS = {
    "Capital of France?": "Paris",
    "Capital of Italy?": "Rome",
    "Capital of Spain?": "Madrid",
    "Capital of Japan?": "Tokyo",
}
ADAPTERS = {"chat": dspy.ChatAdapter, "json": dspy.JSONAdapter}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Any:
    return ADAPTERS[request.param]()


def exact_answer(example: Any, prediction: Any, trace: Any = None) -> bool:
    return bool(example.answer == prediction.answer)


def example(question: str, answer: str) -> Any:
    return dspy.Example(question=question, answer=answer).with_inputs("question")


def schema_properties(body: dict[str, Any]) -> list[str] | None:
    grammar = body.get("response_format")
    return None if grammar is None else sorted(grammar["value"]["properties"])


def test_predict_and_chain_of_thought(scripted: Start, adapter: Any) -> None:
    server = scripted(Oracle(ANSWERS))
    lm = tgi_lm("tgi/smol", server.url, cache=False)
    with dspy.context(lm=lm, adapter=adapter):
        assert dspy.Predict("question -> answer")(question="Capital of France?").answer == "Paris"
        cot = dspy.ChainOfThought("question -> answer")(question="Capital of Italy?")
    assert cot.answer == "Rome"
    assert cot.reasoning == "I recall the answer to 'Capital of Italy?'."
    predict_body, cot_body = (r.json for r in posts(server))
    if isinstance(adapter, dspy.JSONAdapter):
        # the signature's schema went to TGI as a grammar, so the model cannot answer off-format
        assert schema_properties(predict_body) == ["answer"]
        assert schema_properties(cot_body) == ["answer", "reasoning"]
        assert cot_body["response_format"]["type"] == "json"
    else:
        assert schema_properties(cot_body) is None
        assert "[[ ## reasoning ## ]]" in cot_body["messages"][0]["content"]


async def test_chain_of_thought_runs_concurrently_on_one_event_loop(
    scripted: Start, adapter: Any
) -> None:
    a, b = scripted(Oracle(ANSWERS)), scripted(Oracle(ANSWERS))
    lm = tgi_lm("tgi/smol", [a.url, b.url], routing=RoutingPolicy(strategy="round_robin"))
    cot = dspy.ChainOfThought("question -> answer")
    with dspy.context(lm=lm, adapter=adapter):
        results = await asyncio.gather(*(cot.acall(question=q) for q in ANSWERS))
    assert [r.answer for r in results] == list(ANSWERS.values())
    assert (len(posts(a)), len(posts(b))) == (2, 2)


def test_evaluate_in_threads(scripted: Start, adapter: Any) -> None:
    server = scripted(Oracle({k: v for k, v in ANSWERS.items() if k != "Capital of Japan?"}))
    lm = tgi_lm("tgi/smol", server.url, cache=False)
    devset = [example(q, a) for q, a in ANSWERS.items()]
    evaluate = dspy.Evaluate(devset=devset, metric=exact_answer, num_threads=4)
    with dspy.context(lm=lm, adapter=adapter):
        result = evaluate(dspy.ChainOfThought("question -> answer"))
    assert result.score == 75.0  # the oracle does not know Tokyo
    assert sorted(last_question(r.json["messages"]) for r in posts(server)) == sorted(ANSWERS)


def test_bootstrap_few_shot_compiles_demos_that_reach_tgi(scripted: Start, adapter: Any) -> None:
    server = scripted(Oracle(ANSWERS))
    lm = tgi_lm("tgi/smol", server.url)
    trainset = [example("Capital of France?", "Paris"), example("Capital of Italy?", "Rome")]
    optimizer = dspy.BootstrapFewShot(
        metric=exact_answer, max_bootstrapped_demos=2, max_labeled_demos=0
    )
    with dspy.context(lm=lm, adapter=adapter):
        compiled = optimizer.compile(dspy.ChainOfThought("question -> answer"), trainset=trainset)
        prediction = compiled(question="Capital of Spain?")
    (predictor,) = compiled.predictors()
    assert sorted(d.question for d in predictor.demos) == sorted(e.question for e in trainset)
    assert all(d.reasoning for d in predictor.demos)  # bootstrapped traces, not labels
    assert prediction.answer == "Madrid"
    final = posts(server)[-1].json["messages"]
    assert last_question(final) == "Capital of Spain?"
    transcript = json.dumps(final)
    assert "Capital of France?" in transcript and "Rome" in transcript  # the demos were sent


# ---- the tgispy serve server (a subprocess) ----------------------------------------------------


@pytest.fixture(scope="module")
def sim_servers() -> Iterator[dict[str, ServerHandle]]:
    """One sim server per adapter, answering what that adapter parses."""
    texts = {
        "chat": chat_adapter_text({"answer": "Paris"}),
        "json": json.dumps({"answer": "Paris"}),
    }
    servers = {
        name: start_server(["--backend", "sim", "--sim-text", t]) for name, t in texts.items()
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_predict_against_the_sim_server(sim_servers: dict[str, ServerHandle], name: str) -> None:
    lm = tgi_lm("tgi/sim", sim_servers[name].url, cache=False)
    with dspy.context(lm=lm, adapter=ADAPTERS[name](), track_usage=True):
        prediction = dspy.Predict("question -> answer")(question="Capital of France?")
    assert prediction.answer == "Paris"
    usage = prediction.get_lm_usage()["tgi/sim"]
    assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0


@pytest.mark.model
@pytest.mark.slow
def test_json_adapter_output_is_constrained_by_the_grammar_on_a_real_model(
    model_server: ServerHandle,
) -> None:
    """TGI's grammar holds a 135M model's output to the signature's schema, so it parses."""
    lm = tgi_lm("tgi/smollm2", model_server.url, cache=False, max_tokens=48)
    signature = "question -> answer: str, confidence: float"
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict(signature)(question="What is the capital of France?")
    assert isinstance(prediction.answer, str)
    assert isinstance(prediction.confidence, float)
