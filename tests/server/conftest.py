"""Server test fixtures: in-process sim servers, a sim subprocess, OpenAPI checks.

The real-model server (``model_server``) is the session's shared one, from tests/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tgispy.server import ServerConfig, SimConfig, create_app, start_server
from tgispy.server._process import ServerHandle

# TGI's docs/openapi.json at v3.3.7 (huggingface/text-generation-inference, Apache-2.0)
# One vendored copy of TGI's spec serves every test package (see tests/tgi/data/VENDORED.md).
OPENAPI = Path(__file__).resolve().parent.parent / "tgi" / "data" / "openapi.json"


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schemas → JSON Schema: ``nullable: true`` becomes ``anyOf [..., null]``."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="session")
def openapi_components() -> dict[str, Any]:
    spec = json.loads(OPENAPI.read_text())
    return _openapi_to_jsonschema(spec["components"])  # type: ignore[no-any-return]


class SchemaCheck(Protocol):
    def __call__(self, name: str, instance: Any) -> None: ...


@pytest.fixture(scope="session")
def check_schema(openapi_components: dict[str, Any]) -> SchemaCheck:
    """Validate a response against a schema of TGI's openapi.json, e.g. ``GenerateResponse``."""

    def check(name: str, instance: Any) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": openapi_components}
        jsonschema.Draft202012Validator(schema).validate(instance)

    return check


@pytest.fixture
async def sim_client_factory() -> AsyncIterator[Callable[..., Any]]:
    """``await make(sim=SimConfig(...), **server_config)`` → a started in-process TestClient."""
    clients: list[TestClient[Any, Any]] = []

    async def make(sim: SimConfig | None = None, **config: Any) -> TestClient[Any, Any]:
        cfg = ServerConfig(backend="sim", sim=sim or SimConfig(), **config)
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(cfg)))
        await client.start_server()
        clients.append(client)
        resp = await client.get("/health")
        assert resp.status in (200, 503)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def sim_client(sim_client_factory: Callable[..., Any]) -> TestClient[Any, Any]:
    """A sim server answering "The answer is 42." to everything."""
    client: TestClient[Any, Any] = await sim_client_factory(SimConfig(texts=("The answer is 42.",)))
    return client


@pytest.fixture(scope="session")
def sim_server() -> Iterator[ServerHandle]:
    """A sim server in a subprocess (for synchronous clients such as ``text_generation.Client``)."""
    with start_server(["--backend", "sim", "--sim-text", "The answer is 42."]) as server:
        yield server


def parse_sse(body: str) -> list[Any]:
    """Decode an SSE body of ``data: <json>`` events (TGI >= 2.1 framing), ``[DONE]`` kept as is."""
    assert body.endswith("\n\n"), body[-80:]
    events: list[Any] = []
    for block in body.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


@pytest.fixture(scope="session")
def sse() -> Callable[[str], list[Any]]:
    """The :func:`parse_sse` helper, as a fixture."""
    return parse_sse
