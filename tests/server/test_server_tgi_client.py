"""TGI's own Python client (``text-generation`` 0.7.0) works unmodified against ``tgispy serve``."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from text_generation import AsyncClient, Client
from text_generation.errors import OverloadedError, ValidationError
from text_generation.types import FinishReason, Grammar, GrammarType

from tgispy.server import SimConfig
from tgispy.server._process import ServerHandle

# text-generation 0.7.0 calls pydantic v1's deprecated `.dict()`: its warning, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")

PROMPT = "The capital of France is"


def test_client_against_sim(sim_server: ServerHandle) -> None:
    client = Client(sim_server.url, timeout=30)
    response = client.generate("x", max_new_tokens=3)
    assert response.generated_text == "The answer is"
    assert response.details.finish_reason == FinishReason.Length
    assert [t.text for t in response.details.tokens] == ["The", " answer", " is"]
    tokens = list(client.generate_stream("x", max_new_tokens=3))
    assert [t.token.text for t in tokens] == ["The", " answer", " is"]
    assert tokens[-1].generated_text == "The answer is"
    assert tokens[-1].details is not None
    best = client.generate("x", max_new_tokens=2, best_of=2, do_sample=True)
    assert best.details.best_of_sequences is not None
    assert len(best.details.best_of_sequences) == 1
    with pytest.raises(ValidationError, match="`stop` supports up to 4 stop sequences"):
        client.generate("x", stop_sequences=["a"] * 5)


async def test_async_client_against_sim(sim_server: ServerHandle) -> None:
    client = AsyncClient(sim_server.url, timeout=30)
    response = await client.generate("x", max_new_tokens=2)
    assert response.generated_text == "The answer"
    texts = [r.token.text async for r in client.generate_stream("x", max_new_tokens=2)]
    assert texts == ["The", " answer"]


async def test_async_client_sees_overload(sim_client_factory: Any) -> None:
    sim: TestClient[Any, Any] = await sim_client_factory(
        SimConfig(token_latency_s=0.01), max_concurrent_requests=1
    )
    busy = await sim.post(
        "/generate_stream", json={"inputs": "x", "parameters": {"max_new_tokens": 100}}
    )
    await busy.content.readuntil(b"\n\n")
    client = AsyncClient(str(sim.make_url("")).rstrip("/"), timeout=30)
    with pytest.raises(OverloadedError, match="Model is overloaded"):
        await client.generate("x")
    busy.close()


@pytest.mark.model
def test_client_against_model(model_server: ServerHandle) -> None:
    client = Client(model_server.url, timeout=60)
    greedy = client.generate(PROMPT, max_new_tokens=8)
    assert greedy.generated_text.strip()
    assert greedy.details.generated_tokens == len(greedy.details.tokens)
    again = client.generate(PROMPT, max_new_tokens=8)
    assert again.generated_text == greedy.generated_text
    streamed = list(client.generate_stream(PROMPT, max_new_tokens=8))
    assert "".join(s.token.text for s in streamed if not s.token.special) == greedy.generated_text
    assert streamed[-1].generated_text == greedy.generated_text
    best = client.generate(PROMPT, max_new_tokens=4, best_of=2, do_sample=True)
    assert best.details.best_of_sequences is not None
    assert len(best.details.best_of_sequences) == 1
    ip = client.generate(
        "The server's IP address is",
        max_new_tokens=20,
        grammar=Grammar(type=GrammarType.Regex, value=r"(\d{1,3}\.){3}\d{1,3}"),
    )
    assert ip.generated_text.count(".") == 3
    with pytest.raises(ValidationError, match="must be <= 1024"):
        client.generate(PROMPT, max_new_tokens=2000)


@pytest.mark.model
async def test_async_client_against_model(model_server: ServerHandle) -> None:
    client = AsyncClient(model_server.url, timeout=60)
    response = await client.generate(PROMPT, max_new_tokens=6, stop_sequences=["."])
    assert response.details.finish_reason in (FinishReason.StopSequence, FinishReason.Length)
    events = [e async for e in client.generate_stream(PROMPT, max_new_tokens=6)]
    assert all(e.details is None for e in events[:-1])
    assert events[-1].details is not None
    assert events[-1].details.generated_tokens == len(events)
