"""DSPy 2.4.17's ``dspy.LM("provider/model", ...)`` builds the provider client, once."""

from __future__ import annotations

import pytest

import tgispy as dspy
from tgispy.lm._provider import ProviderLM
from tgispy.testing import MockTransport, Reply


def test_lm_with_a_provider_name_is_the_provider_client() -> None:
    transport = MockTransport(
        lambda req: Reply(404, b"") if req.method == "GET" else Reply.chat("Paris")
    )
    lm = dspy.LM(
        "openai/my-model", api_base="http://vllm.test:8000/v1", cache=False, transport=transport
    )
    assert isinstance(lm, ProviderLM) and lm.model == "my-model"
    assert lm("Capital of France?") == ["Paris"]
    assert [r.path for r in transport.requests if r.method == "POST"] == ["/v1/chat/completions"]


def test_subclasses_and_plain_names_are_untouched() -> None:
    class Echo(dspy.LM):
        async def acomplete(self, prompt, **kwargs):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    assert type(Echo("a/b")) is Echo


def test_url_userinfo_of_an_engine_client_is_basic_auth_and_never_shown() -> None:
    password = "Pa55wordThatIsLong"
    transport = MockTransport(
        lambda req: Reply(404, b"") if req.method == "GET" else Reply.chat("Paris")
    )
    lm = dspy.HFClientVLLM(
        model="m",
        port=None,
        url=f"http://alice:{password}@vllm.test:8000",
        model_type="chat",
        cache=False,
        transport=transport,
    )
    assert lm("Capital of France?") == ["Paris"]
    post = next(r for r in transport.requests if r.method == "POST")
    assert post.headers["Authorization"].startswith("Basic ")
    assert post.replica == "http://vllm.test:8000"
    for surface in (repr(lm), str(lm.stats()), str(lm.urls)):
        assert password not in surface


def test_huggingface_provider_sends_hf_token_and_other_providers_never_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "hf_TokenValueThatIsLongEnough"
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.delenv("HUGGINGFACE_API_KEY", raising=False)
    monkeypatch.delenv("HOSTED_VLLM_API_KEY", raising=False)

    def sent_authorization(model: str, base: str) -> str | None:
        transport = MockTransport(
            lambda req: Reply(404, b"") if req.method == "GET" else Reply.chat("Paris")
        )
        lm = dspy.LM(model, api_base=base, cache=False, transport=transport)
        assert lm("Capital of France?") == ["Paris"]
        post = next(r for r in transport.requests if r.method == "POST")
        return post.headers.get("Authorization")

    # TGI's /v1 on an HF endpoint: LiteLLM's huggingface provider takes HF_TOKEN too
    assert sent_authorization("huggingface/tgi", "https://ep.hf.test/v1") == f"Bearer {token}"
    # a vLLM server is not HuggingFace's: its token never leaves for it
    assert sent_authorization("hosted_vllm/m", "https://gpu.test:8000/v1") is None
