"""DSPy 2.4's client classes against the real llama.cpp server, through the program layer.

``OpenAI(api_base=..., engine="llamacpp")`` is how a DSPy 2.4 program reaches a llama.cpp server;
``HFClientVLLM(..., engine="llamacpp")`` checks that any 2.4 class can speak any dialect. Every
request is real HTTP to 127.0.0.1; generations stay a few tokens long.
"""

from __future__ import annotations

import asyncio

import pytest

import tgispy as dspy
from tgispy.errors import ContextWindowExceededError
from tgispy.lm._fleet import FleetLM

from .conftest import SLOTS, LlamaServer

PROMPT = "The three primary colors are"


def make_lm(server: LlamaServer, **kwargs: object) -> FleetLM:
    options: dict[str, object] = {"max_tokens": 6, "cache": False}
    options.update(kwargs)
    return dspy.OpenAI(
        model="smollm2", api_base=server.url + "/v1", api_key="local", engine="llamacpp", **options
    )


def test_call_discovers_limits_and_serves_n_in_one_request(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server)
    assert lm.model_type == "text"
    [text] = lm(PROMPT)
    assert text and lm.history[-1]["usage"]["completion_tokens"] == 6
    limits = asyncio.run(lm.limits())
    assert limits is not None and limits.max_n == SLOTS and limits.context_length == 2048
    before = lm.stats()[llama_server.url]["requests"]
    texts = lm(PROMPT, n=3, temperature=0.7, max_tokens=3)
    assert len(texts) == 3
    assert lm.stats()[llama_server.url]["requests"] == before + 1  # one prefill, n=3 server-side
    # more than the slots: split into requests the server accepts, still exactly n choices
    assert len(lm(PROMPT, n=SLOTS + 2, temperature=0.7, max_tokens=2)) == SLOTS + 2


def test_greedy_is_repeatable_and_stop_strings_are_cut(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server)
    [free] = lm(PROMPT)
    assert lm(PROMPT) == [free]
    words = free.split()
    stop = " " + words[1]
    [cut] = lm(PROMPT, stop=[stop])
    assert cut == free[: free.index(stop)]
    assert lm.history[-1]["finish_reasons"] == ["stop"]


def test_predict_and_chain_of_thought(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server, max_tokens=20)
    with dspy.context(lm=lm):
        pred = dspy.Predict("question -> answer")(question="What is the capital of France?")
        assert isinstance(pred.answer, str)
        cot = dspy.ChainOfThought("question -> answer")(question="What is 2 + 2?")
        assert isinstance(cot.answer, str) and isinstance(cot.rationale, str)
    prompt = lm.history[-1]["prompt"]
    assert prompt.startswith("Given the fields `question`, produce the fields `answer`.")


class Arith(dspy.Signature):
    """Answer the arithmetic question with a number."""

    question: str = dspy.InputField()
    answer: int = dspy.OutputField()


class Weather(dspy.Signature):
    """Describe the weather."""

    city: str = dspy.InputField()
    sunny: bool = dspy.OutputField()
    degrees: int = dspy.OutputField()


def test_typed_outputs_are_constrained_by_llamacpp_grammars(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server, max_tokens=20)
    with dspy.context(lm=lm):
        arith = dspy.Predict(Arith)(question="What is 3 plus 4?")
        assert isinstance(arith.answer, int)
        assert "grammar" in str(lm.history[-1]["kwargs"])  # the regex went out as GBNF
        weather = dspy.Predict(Weather)(city="Paris")
        assert isinstance(weather.sunny, bool) and isinstance(weather.degrees, int)


def test_stream_matches_the_whole_answer(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server)
    [whole] = lm(PROMPT)
    pieces = list(lm.stream(PROMPT))
    assert len(pieces) > 1 and "".join(pieces) == whole
    assert lm.history[-1]["usage"]["completion_tokens"] == 6


def test_chat_mode_with_a_system_prompt(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server, model_type="chat", system_prompt="Answer in one word.")
    assert lm(PROMPT, max_tokens=2)[0]
    assert lm.history[-1]["usage"]["prompt_tokens"] > 10  # the system message went out too
    reply = lm.chat([{"role": "user", "content": "Say hi."}], max_tokens=2)
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")
    assert reply["usage"]["prompt_tokens"] > 0


def test_hfclientvllm_constructor_speaks_the_llamacpp_dialect(llama_server: LlamaServer) -> None:
    host, port = llama_server.url.rsplit(":", 1)
    lm = dspy.HFClientVLLM(
        model="smollm2", port=int(port), url=host, engine="llamacpp", cache=False
    )
    assert lm(PROMPT, max_tokens=3)[0]


def test_errors_are_mapped_in_the_engines_dialect(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server)
    with pytest.raises(ContextWindowExceededError, match="exceeds the available context size"):
        lm("x " * 3000)


def test_cache_hits_skip_the_server(llama_server: LlamaServer) -> None:
    lm = make_lm(llama_server, cache=True)
    first = lm(PROMPT, max_tokens=2)
    before = lm.stats()[llama_server.url]["requests"]
    assert lm(PROMPT, max_tokens=2) == first
    assert lm.stats()[llama_server.url]["requests"] == before
    assert lm.history[-1]["cached"] is True


def test_llamacpp_class_serves_a_gguf_in_process() -> None:
    from tgispy.lm._llamacpp import LlamaCpp  # tgispy.LlamaCpp once the public list has it

    from .conftest import _model_path

    lm = LlamaCpp("smollm2", model_path=_model_path(), threads=1, parallel=2, n_ctx=512,
                       cache=False)  # fmt: skip
    try:
        assert lm.urls[0].startswith("http://127.0.0.1:") and lm.dialect.name == "llamacpp"
        assert len(lm(PROMPT, max_tokens=2, n=2, temperature=0.7)) == 2
        assert asyncio.run(lm.limits()).max_n == 2  # type: ignore[union-attr]
        with dspy.context(lm=lm):
            assert isinstance(dspy.Predict(Arith)(question="What is 1 plus 1?").answer, int)
    finally:
        lm.close()
    with pytest.raises(dspy.TGIError, match="cannot connect"):  # the server is gone
        lm(PROMPT, max_tokens=2)
