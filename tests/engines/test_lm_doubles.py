"""DSPy 2.4's client classes against in-process doubles of vLLM, SGLang and Ollama.

The doubles (doubles.py) enforce each engine's documented request rules and answer in its
shapes; these tests run the classes and the program layer (Predict, typed outputs, streaming, n)
over them through :class:`tgispy.testing.MockTransport`.
"""

from __future__ import annotations

from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError, ContextWindowExceededError, ServerError
from tgispy.lm._provider import ProviderLM
from tgispy.testing import MockTransport, Recorded, Reply

from . import doubles


def answer_four(source: Any, body: dict[str, Any]) -> str:
    return " 4"


def answer_four_and_more(source: Any, body: dict[str, Any]) -> str:
    return " 4\n\nQuestion: what next?"


class Arith(dspy.Signature):
    """Answer the arithmetic question with a number."""

    question: str = dspy.InputField()
    answer: int = dspy.OutputField()


class Weather(dspy.Signature):
    """Describe the weather."""

    city: str = dspy.InputField()
    sunny: bool = dspy.OutputField()
    degrees: int = dspy.OutputField()


def posts(transport: MockTransport) -> list[Recorded]:
    return [r for r in transport.requests if r.method == "POST"]


# ---- vLLM --------------------------------------------------------------------------------------
def vllm_lm(**kwargs: Any) -> tuple[Any, MockTransport]:
    transport = MockTransport(doubles.vllm(answer_four))
    lm = dspy.HFClientVLLM(
        model="m", port=[8000, 8001], url="http://vllm.test", cache=False, transport=transport,
        **kwargs,
    )  # fmt: skip
    return lm, transport


def test_vllm_predict_and_the_request_it_sends() -> None:
    lm, transport = vllm_lm()
    with dspy.context(lm=lm):
        assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
    [req] = posts(transport)
    assert req.path == "/v1/completions"
    body = req.json
    assert body["model"] == "m" and body["max_tokens"] == 150
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.0, 1.0, 0)
    assert not {"port", "url", "guided_json", "best_of"} & set(body)
    assert lm.history[-1]["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 2,
        "total_tokens": 11,
    }
    assert {r.replica for r in transport.requests} <= {
        "http://vllm.test:8000",
        "http://vllm.test:8001",
    }


def test_vllm_n_is_server_side_when_sampling_and_fanned_out_when_greedy() -> None:
    lm, transport = vllm_lm()
    assert len(lm("Q:", n=3, temperature=0.7)) == 3
    assert [r.json.get("n") for r in posts(transport)] == [3]
    transport.requests.clear()
    assert len(lm("Q:", n=3, temperature=0.0)) == 3  # vLLM answers 400 to greedy n>1
    assert [r.json.get("n") for r in posts(transport)] == [None, None, None]


def test_vllm_typed_outputs_use_structured_outputs_never_guided_keys() -> None:
    lm, transport = vllm_lm()
    with dspy.context(lm=lm):
        assert dspy.Predict(Arith)(question="What is 2+2?").answer == 4
        weather = dspy.Predict(Weather)(city="Oslo")
    assert (weather.sunny, weather.degrees) == (True, 4)
    regex, schema = (r.json["structured_outputs"] for r in posts(transport))
    assert set(regex) == {"regex"} and set(schema) == {"json"}
    assert schema["json"]["required"] == ["sunny", "degrees"]
    assert not any(k.startswith("guided_") for r in posts(transport) for k in r.json)


def test_vllm_more_than_four_stops_are_applied_by_the_client() -> None:
    transport = MockTransport(doubles.vllm(answer_four_and_more))
    lm = dspy.HFClientVLLM(model="m", port=8000, cache=False, transport=transport)
    stops = ["A:", "B:", "C:", "D:", "Question:"]
    assert lm("Q:", stop=stops) == [" 4\n\n"]
    assert posts(transport)[0].json["stop"] == stops[:4]
    assert lm.history[-1]["finish_reasons"] == ["stop"]


def test_vllm_errors_name_the_fix() -> None:
    lm, _ = vllm_lm()
    with pytest.raises(ContextWindowExceededError, match="maximum context length is 4096"):
        lm("x" * 5000)
    wrong = dspy.HFClientVLLM(
        model="other", port=8000, cache=False, transport=MockTransport(doubles.vllm(answer_four))
    )
    with pytest.raises(ConfigError, match=r"serves \['m'\], not model='other'"):
        wrong("hi")
    assert not [r for r in wrong._client.transport.requests if r.method == "POST"]  # type: ignore[attr-defined]


def test_vllm_stream_and_chat_through_openai_class() -> None:
    transport = MockTransport(doubles.vllm(lambda source, body: "Paris is the capital."))
    lm = dspy.OpenAI(
        model="m", api_base="http://vllm.test:8000/v1", api_key="k", model_type="chat",
        system_prompt="Be brief.", engine="vllm", cache=False, transport=transport,
    )  # fmt: skip
    pieces = list(lm.stream("Capital of France?"))
    assert len(pieces) > 1 and "".join(pieces) == "Paris is the capital."
    body = posts(transport)[0].json
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["stream_options"] == {"include_usage": True}
    assert posts(transport)[0].headers["Authorization"] == "Bearer k"
    assert lm.history[-1]["usage"]["total_tokens"] == 11


# ---- SGLang ------------------------------------------------------------------------------------
def test_sglang_defaults_and_typed_json() -> None:
    transport = MockTransport(doubles.sglang(answer_four_and_more))
    lm = dspy.HFClientSGLang(model="default", port=30000, cache=False, transport=transport)
    assert lm.kwargs["stop"] == ["\n", "\n\n"] and lm.kwargs["temperature"] == 0.01
    assert lm("Q:") == [" 4"]  # the default "\n" stop is cut, as SGLang cuts it
    body = posts(transport)[0].json
    assert body["top_k"] == -1 and body["temperature"] == 0.01
    with dspy.context(lm=lm):
        weather = dspy.Predict(Weather)(city="Oslo")
    assert (weather.sunny, weather.degrees) == (True, 4)
    assert isinstance(posts(transport)[-1].json["json_schema"], str)


# ---- Ollama ------------------------------------------------------------------------------------
def ollama_lm(model: str = "llama3.2", **kwargs: Any) -> tuple[Any, MockTransport]:
    transport = MockTransport(doubles.ollama(answer_four))
    lm = dspy.OllamaLocal(
        model=model, base_url="http://ollama.test:11434", cache=False, transport=transport,
        **kwargs,
    )  # fmt: skip
    return lm, transport


def test_ollama_predict_options_and_n_fan_out() -> None:
    lm, transport = ollama_lm()
    with dspy.context(lm=lm):
        assert dspy.Predict("question -> answer")(question="2+2?").answer == "4"
    body = posts(transport)[0].json
    assert transport.requests[0].path == "/api/generate" and body["stream"] is False
    assert body["options"]["num_predict"] == 150 and body["options"]["num_ctx"] == 1024
    assert body["options"]["top_k"] == 20 and body["options"]["temperature"] == 0.0
    assert "n" not in body["options"] and "max_tokens" not in body["options"]
    transport.requests.clear()
    assert len(lm("Q:", n=3, temperature=0.7)) == 3
    assert len(posts(transport)) == 3


def test_ollama_chat_json_format_and_typed_outputs() -> None:
    lm, transport = ollama_lm(model_type="chat", format="json")
    with dspy.context(lm=lm):
        weather = dspy.Predict(Weather)(city="Oslo")
        assert dspy.Predict(Arith)(question="What is 2+2?").answer == 4
    assert (weather.sunny, weather.degrees) == (True, 4)
    first, second = posts(transport)
    assert first.path == "/api/chat" and first.json["format"]["type"] == "object"
    assert second.json["format"]["properties"] == {"answer": {"type": "integer"}}


def test_ollama_single_field_regex_goes_out_unconstrained_and_is_validated() -> None:
    lm, transport = ollama_lm()
    with dspy.context(lm=lm):
        assert dspy.Predict(Arith)(question="What is 2+2?").answer == 4
    assert "format" not in posts(transport)[0].json  # Ollama takes no regex


def test_ollama_unknown_model_says_pull() -> None:
    lm, _ = ollama_lm(model="llama9")
    with pytest.raises(ServerError, match="ollama pull"):
        lm("hi")


# ---- any OpenAI-compatible server; dspy.LM; out-of-scope clients --------------------------------
def test_a_server_that_ignores_n_still_yields_exactly_n() -> None:
    def one_choice(req: Recorded) -> Reply:
        return Reply(200, {"choices": [{"index": 0, "text": "x", "finish_reason": "stop"}]})

    transport = MockTransport(one_choice)
    lm = dspy.OpenAI(model="m", api_base="http://tgi.test/v1", cache=False, transport=transport)
    assert lm("Q:", n=3, temperature=0.7) == ["x", "x", "x"]
    assert [r.json.get("n") for r in posts(transport)] == [3, None, None]


def test_provider_lm_maps_prefixes_to_dialects() -> None:
    transport = MockTransport(doubles.vllm(answer_four))
    lm = ProviderLM(
        "hosted_vllm/m", api_base="http://vllm.test:8000/v1", transport=transport, cache=False
    )
    assert lm("2+2?") == [" 4"]
    assert posts(transport)[0].path == "/v1/chat/completions"
    assert posts(transport)[0].json["max_tokens"] == 1000
    text = ProviderLM("hosted_vllm/m", api_base="http://vllm.test:8000/v1", model_type="text",
                      transport=transport, cache=False)  # fmt: skip
    text(messages=[{"role": "user", "content": "2+2?"}])
    assert posts(transport)[-1].json["prompt"] == "2+2?\n\nBEGIN RESPONSE:"
    ollama_transport = MockTransport(doubles.ollama(answer_four))
    chat = ProviderLM("ollama_chat/llama3.2", api_base="http://ollama.test:11434",
                      transport=ollama_transport, cache=False)  # fmt: skip
    assert chat("hi") and posts(ollama_transport)[0].path == "/api/chat"


@pytest.mark.parametrize("model", ["anthropic/claude-3", "bedrock/x", "gemini/gemini-pro"])
def test_hosted_proprietary_providers_are_out_of_scope(model: str) -> None:
    with pytest.raises(ConfigError, match=r"out of scope.*OpenAI-compatible"):
        ProviderLM(model)


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="hosted_vllm"):
        ProviderLM("mystery/m", api_base="http://x.test")


@pytest.mark.parametrize("name", ["Claude", "Cohere", "GoogleVertexAI", "HFModel", "AzureOpenAI"])
def test_out_of_scope_classes_import_and_raise(name: str) -> None:
    cls = getattr(dspy, name)
    with pytest.raises(ConfigError, match=rf"dspy.{name} is out of scope.*api_base="):
        cls(model="x")


def test_azure_provider_and_http_client_are_refused() -> None:
    with pytest.raises(ConfigError, match="Azure"):
        dspy.OpenAI(api_provider="azure")
    with pytest.raises(ConfigError, match="http_client"):
        dspy.OpenAI(http_client=object())


def test_together_sends_its_2_4_defaults_and_inst_template() -> None:
    transport = MockTransport(doubles.vllm(answer_four, model="mistralai/Mixtral-8x7B-Instruct"))
    lm = dspy.Together(
        model="mistralai/Mixtral-8x7B-Instruct", api_key="k", cache=False, transport=transport
    )
    assert lm("2+2?") == [" 4"]
    [req] = posts(transport)
    assert req.replica == "https://api.together.xyz" and req.path == "/v1/completions"
    assert req.json["prompt"] == "[INST]2+2?[/INST]" and req.json["stop"] == ["\n\n---"]
    assert (req.json["top_k"], req.json["repetition_penalty"], req.json["max_tokens"]) == (
        20,
        1,
        512,
    )


def test_evaluate_with_threads_over_auto_detected_replicas() -> None:
    # Sync programs in 8 threads, each driving its own event loop: one detection, one dialect.
    transport = MockTransport(doubles.vllm(lambda source, body: " " + source.split("is ")[-1][:1]))
    lm = dspy.OpenAI(
        model="m", api_base=["http://a.test/v1", "http://b.test/v1"], cache=False,
        transport=transport,
    )  # fmt: skip
    devset = [
        dspy.Example(question=f"The digit is {i}", answer=str(i)).with_inputs("question")
        for i in range(10)
    ]
    with dspy.context(lm=lm):
        evaluate = dspy.Evaluate(
            devset=devset,
            metric=lambda ex, pred, trace=None: ex.answer == pred.answer,
            num_threads=8,
        )
        score = evaluate(dspy.Predict("question -> answer"))
    assert float(score) == 100.0
    assert lm.dialect.name == "vllm"
    assert len(posts(transport)) == 10


def test_chat_stream_over_sglang_and_ollama() -> None:
    messages = [{"role": "user", "content": "Capital of France?"}]
    transport = MockTransport(doubles.sglang(lambda source, body: "Paris is the capital."))
    lm = dspy.HFClientSGLang(model="default", port=30000, cache=False, transport=transport)
    pieces = list(lm.chat_stream(messages, stop=None))
    assert len(pieces) > 1 and "".join(pieces) == "Paris is the capital."
    assert posts(transport)[0].path == "/v1/chat/completions"
    entry = lm.history[-1]
    assert entry["messages"] == messages and entry["finish_reasons"] == ["stop"]
    assert entry["usage"]["total_tokens"] == 11
    ollama, ollama_transport = ollama_lm(model_type="chat")
    del ollama, ollama_transport
    # Ollama streams NDJSON (one JSON object a line), chat and generate alike
    for model_type, path in (("chat", "/api/chat"), ("text", "/api/generate")):
        transport = MockTransport(doubles.ollama(lambda source, body: "Paris is the capital."))
        ollama = dspy.OllamaLocal(
            model="llama3.2",
            model_type=model_type,
            base_url="http://ollama.test:11434",
            cache=False,
            transport=transport,
        )
        pieces = list(ollama.chat_stream(messages) if model_type == "chat" else ollama.stream("q"))
        assert len(pieces) > 1 and "".join(pieces) == "Paris is the capital."
        (post,) = posts(transport)
        assert post.path == path and post.json["stream"] is True
        entry = ollama.history[-1]
        assert entry["finish_reasons"] == ["stop"] and entry["usage"]["total_tokens"] == 11
