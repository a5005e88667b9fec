"""Credentials never leak: not into logs, errors, history, the cache, or the server's output.

Each scenario sends real requests carrying a credential (an ``Authorization`` header given
explicitly, ``auth=`` as a bearer token or a user/password pair, or ``HF_TOKEN`` over TLS) to a
local server that records them -- so the tests first prove the credential *was* sent -- through
runs that succeed and runs that fail (401, a proxy echoing the header back, 5xx, a dead port).
Then every place a secret could end up is searched for it, byte for byte.

Also here: the cache directory's permissions, and ``tgispy serve`` refusing non-loopback
addresses unless ``--allow-remote`` is given (and saying so when it is).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import pickle
import ssl
import stat
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

import tgispy
from tgispy.cache import DiskCache, LMCache, MemoryCache
from tgispy.errors import ConfigError, TGIError
from tgispy.lm._tgi import HFClientTGI
from tgispy.server import ServerConfig, start_server
from tgispy.server._serve import readiness_line
from tgispy.testing import Recorded, Reply, ScriptedTGI

SECRET = "hf_tgispyTopSecretToken0123456789"
USER, PASSWORD = "alice", "tgispy-TopSecret-Password-42"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MARKERS = (SECRET, PASSWORD, BASIC)
ANSWER = "Paris is the capital."

#: how each variant configures the client, and the header the server must receive
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "headers": ({"headers": {"Authorization": f"Bearer {SECRET}"}}, f"Bearer {SECRET}"),
    "auth-token": ({"auth": SECRET}, f"Bearer {SECRET}"),
    "auth-basic": ({"auth": (USER, PASSWORD)}, f"Basic {BASIC}"),
}


def assert_clean(where: str, data: Any) -> None:
    """No secret in ``data`` (text, bytes, or anything else through its ``repr``)."""
    if isinstance(data, bytes):
        found = [m for m in MARKERS if m.encode() in data]
    else:
        text = data if isinstance(data, str) else repr(data)
        found = [m for m in MARKERS if m in text]
    assert not found, f"{where} leaks a credential"


def assert_error_clean(err: BaseException) -> None:
    """An error, its chain, its traceback and its pickle hold no secret."""
    assert isinstance(err, TGIError), repr(err)
    assert_clean("str(error)", str(err))
    assert_clean("repr(error)", repr(err))
    assert_clean("pickled error", pickle.dumps(err))
    assert_clean("traceback", "".join(traceback.format_exception(err)))
    cause: BaseException | None = err
    while cause is not None:
        assert_clean(
            "cause", f"{cause!s} {cause!r} {vars(cause) if hasattr(cause, '__dict__') else ''}"
        )
        cause = cause.__cause__ or cause.__context__
    again = pickle.loads(pickle.dumps(err))
    assert_clean("unpickled error", f"{again!s} {again!r}")


def assert_cache_clean(directory: Path, expect: str) -> None:
    """The cache files hold the answer (so something was written) and no secret."""
    blobs = b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())
    assert expect.encode() in blobs, "nothing was cached: the search would prove nothing"
    assert_clean(f"cache files in {directory}", blobs)


# --- a recording TGI server -----------------------------------------------------------------


def _handler(rec: Recorded) -> Reply:
    body = rec.json if isinstance(rec.json, dict) else {}
    prompt = str(body.get("inputs") or body.get("messages") or "")
    auth = rec.headers.get("Authorization", "")
    if "fail-401" in prompt:  # TGI behind --api-key: an empty 401
        return Reply(401, b"")
    if "fail-echo" in prompt:  # a proxy that echoes the request's headers in its error page
        return Reply(400, f"<html>Bad request. Authorization: {auth}; token {auth.split()[-1]}")
    if "fail-422" in prompt:
        return Reply.error(422, f"Input validation error: unexpected header {auth}", "validation")
    if "fail-500" in prompt:
        return Reply.error(500, "Incomplete generation", "incomplete_generation")
    if rec.path == "/generate_stream":
        token = {"id": 1, "text": ANSWER, "logprob": -0.1, "special": False}
        return Reply(
            sse=(
                {"index": 1, "token": token, "generated_text": None, "details": None},
                {
                    "index": 2,
                    "token": {**token, "text": "", "special": True},
                    "generated_text": ANSWER,
                    "details": None,
                },
            )
        )
    if rec.path == "/v1/chat/completions":
        return Reply(
            200,
            {
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ANSWER},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            },
        )
    return Reply.generate(ANSWER, details=True, finish_reason="eos_token")


@pytest.fixture
def server() -> Iterator[ScriptedTGI]:
    with ScriptedTGI(_handler) as scripted:
        yield scripted


def _client(urls: list[str], options: dict[str, Any], cache: LMCache) -> HFClientTGI:
    return HFClientTGI("tgispy/secret-test", None, urls, options, cache=cache)


def _cache(directory: Path) -> LMCache:
    return LMCache(memory=MemoryCache(maxsize=100), disk=DiskCache(directory))


def _dead_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_credentials_stay_out_of_logs_errors_history_and_cache(
    variant: str,
    server: ScriptedTGI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options, sent = VARIANTS[variant]
    caplog.set_level(logging.DEBUG)
    cache_dir = tmp_path / "cache"
    lm = _client([server.url], options, _cache(cache_dir))

    # runs that succeed: generate (twice: the second is a cache hit), stream, chat
    assert lm("What is the capital of France?") == [ANSWER]
    assert lm("What is the capital of France?") == [ANSWER]
    assert "".join(lm.stream("Stream it")) == ANSWER
    assert lm.chat([{"role": "user", "content": "Chat"}])["choices"][0]["text"] == ANSWER

    # runs that fail: every shape of error, and a replica that is not there at all
    errors: list[BaseException] = []
    for prompt in ("fail-401", "fail-echo", "fail-422", "fail-500"):
        with pytest.raises(TGIError) as caught:
            lm(prompt)
        errors.append(caught.value)
    dead = _client([_dead_url()], options, _cache(tmp_path / "unused"))
    with pytest.raises(TGIError) as caught:
        dead("anything")
    errors.append(caught.value)

    # the credential really went out, on every request
    posts = [r for r in server.requests if r.method == "POST"]
    assert posts and all(r.headers.get("Authorization") == sent for r in posts)
    # ... and the echoing proxy's page was read (with the secret cut out of it)
    assert any("[redacted]" in str(err) for err in errors)

    for err in errors:
        assert_error_clean(err)
    assert_clean("logs", caplog.text)
    for record in caplog.records:
        assert_clean("a log record", f"{record.getMessage()} {record.args!r} {record.exc_text}")
    assert_clean("history", list(lm.history))
    assert_clean("history as JSON", json.dumps(list(lm.history), default=str))
    shown = lm.inspect_history(n=10)
    with tgispy.context(lm=lm):
        shown += tgispy.inspect_history(n=10)
    assert ANSWER in shown
    assert_clean("inspect_history", shown + capsys.readouterr().out)
    assert_clean("repr(lm)", repr(lm))
    assert_clean("the client's transport", repr(lm._client._transport))
    assert_clean("stats", lm.stats())
    assert_cache_clean(cache_dir, ANSWER)


def test_cache_keys_do_not_depend_on_credentials(server: ScriptedTGI, tmp_path: Path) -> None:
    """Two clients with different tokens share cache entries: the key holds no credential."""
    cache = _cache(tmp_path / "cache")
    first = _client([server.url], {"auth": SECRET}, cache)
    assert first("Shared question?") == [ANSWER]
    server.set_script([Reply.error(500, "Incomplete generation", "incomplete_generation")])
    second = _client([server.url], {"auth": "hf_someOtherTokenEntirely"}, cache)
    assert second("Shared question?") == [ANSWER]  # the server fails now: only a hit answers
    assert second.history[-1]["cached"] is True


def test_hf_token_is_not_sent_to_plain_http(
    server: ScriptedTGI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    lm = _client([server.url], {}, _cache(tmp_path / "cache"))
    assert lm("Hello?") == [ANSWER]
    assert all("Authorization" not in r.headers for r in server.requests)


# --- HF_TOKEN over TLS ----------------------------------------------------------------------


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path, list[str]]]:
    """A TLS server on 127.0.0.1 (a throwaway CA) recording the Authorization headers it gets."""
    ca = trustme.CA()
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    seen: list[str] = []

    async def info(request: web.Request) -> web.Response:
        return web.json_response({"version": "3.3.6-dev0", "max_stop_sequences": 4})

    async def generate(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        seen.append(auth)
        body = await request.json()
        if "fail" in body["inputs"]:
            return web.Response(status=401, text=f"invalid credentials: {auth}")
        return web.json_response({"generated_text": ANSWER})

    app = web.Application()
    app.router.add_get("/info", info)
    app.router.add_post("/generate", generate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}", ca_path, seen
    finally:
        await runner.cleanup()


async def test_hf_token_over_tls_stays_out_of_everything(
    tls_server: tuple[str, Path, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, ca_path, seen = tls_server
    monkeypatch.setenv("HF_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    cache_dir = tmp_path / "cache"
    lm = _client([url], {"verify": str(ca_path)}, _cache(cache_dir))
    assert await lm.acall("Hello over TLS?") == [ANSWER]
    with pytest.raises(TGIError) as caught:
        await lm.acall("fail, please")
    assert seen and all(auth == f"Bearer {SECRET}" for auth in seen)
    assert caught.value.status == 401 and "[redacted]" in str(caught.value)
    assert_error_clean(caught.value)
    assert_clean("logs", caplog.text)
    assert_clean("history", list(lm.history))
    assert_clean("inspect_history", lm.inspect_history(n=5))
    assert_cache_clean(cache_dir, ANSWER)


# --- the server does not log or echo credentials ---------------------------------------------


def test_tgispy_serve_does_not_log_or_echo_credentials() -> None:
    import requests

    args = ["--backend", "sim", "--log-level", "debug", "--sim-error-rate", "500=0.3"]
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    bodies = [
        b'{"inputs": "Hi", "parameters": {"max_new_tokens": 3}}',
        b'{"inputs": "Hi", "parameters": {"top_p": 5}}',
        b'{"inputs": 5}',
        b"{not json",
    ]
    with start_server(args, timeout=60) as served, requests.Session() as http:
        for _ in range(3):
            for path in ("/generate", "/generate_stream", "/v1/chat/completions"):
                for body in bodies:
                    response = http.post(served.url + path, data=body, headers=headers, timeout=10)
                    assert_clean(f"{path} answer", response.content)
        http.post(
            served.url + "/generate",
            data=bodies[0],
            headers={**headers, "Content-Type": "text/plain"},
            timeout=10,
        )
        tail = served.stderr_tail()
    assert_clean("server logs", tail)


# --- cache permissions ----------------------------------------------------------------------


def _modes(directory: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(directory.stat().st_mode)}
    for path in directory.rglob("*"):
        found[str(path.relative_to(directory))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_cache_dir_is_0700_and_files_0600_under_any_umask(
    server: ScriptedTGI, tmp_path: Path, umask: int
) -> None:
    old = os.umask(umask)
    try:
        cache_dir = tmp_path / f"cache-{umask:o}"
        lm = _client([server.url], {"auth": SECRET}, _cache(cache_dir))
        assert lm("Permissions?") == [ANSWER]
        found = _modes(cache_dir)
    finally:
        os.umask(old)
    assert found.pop(".") == 0o700
    assert found and set(found.values()) == {0o600}, found


def test_cache_refuses_a_directory_others_can_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever can write the directory can swap the database, and so choose the answers."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with caplog.at_level(logging.WARNING, logger="tgispy.cache._disk"):
        disk = DiskCache(shared)
    assert not disk.available
    assert "writable by other users" in caplog.text and "chmod 700" in caplog.text
    assert list(shared.iterdir()) == []


def test_cache_refuses_a_directory_of_another_user(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "theirs"
    mine.mkdir(mode=0o700)
    # (seen from another user's process: chown would need root)
    monkeypatch.setattr(os, "geteuid", lambda: mine.stat().st_uid + 1)
    with caplog.at_level(logging.WARNING, logger="tgispy.cache._disk"):
        disk = DiskCache(mine)
    assert not disk.available
    assert "belongs to another user" in caplog.text


# --- tgispy serve binds only loopback unless told otherwise ----------------------------------

NON_LOOPBACK = ["0.0.0.0", "::", "", "10.1.2.3", "192.168.0.1", "example.com",
                "localhost.evil.example", "127.0.0.1.nip.io"]  # fmt: skip
LOOPBACK = ["127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost", "LOCALHOST"]


@pytest.mark.parametrize("host", NON_LOOPBACK)
def test_non_loopback_needs_allow_remote(host: str) -> None:
    with pytest.raises(ConfigError, match="--allow-remote"):
        ServerConfig(backend="sim", host=host)
    config = ServerConfig(backend="sim", host=host, allow_remote=True)
    line = readiness_line(config, "http://x:1", "sim")
    assert "WARNING: non-loopback address allowed by --allow-remote, no authentication" in line


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_needs_nothing(host: str) -> None:
    config = ServerConfig(backend="sim", host=host)
    assert "WARNING" not in readiness_line(config, "http://x:1", "sim")


def test_serve_refuses_0000_without_allow_remote_and_says_why() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tgispy.server", "--backend", "sim", "--host", "0.0.0.0",
         "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "refusing to listen on non-loopback address '0.0.0.0'" in proc.stderr
    assert "--allow-remote" in proc.stderr
    assert "listening" not in proc.stdout


def test_serve_with_allow_remote_on_loopback_says_nothing_alarming() -> None:
    with start_server(["--backend", "sim", "--allow-remote"], timeout=60) as served:
        assert served.url.startswith("http://127.0.0.1:")
        assert served.running()


async def test_serve_prints_the_readiness_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The line checked above is the one `serve` prints once it listens (here: loopback, with
    --allow-remote, so no warning)."""
    from tgispy.server import serve

    config = ServerConfig(backend="sim", port=0, allow_remote=True)
    task = asyncio.create_task(serve(config))
    printed = ""
    for _ in range(500):
        await asyncio.sleep(0.01)
        printed += capsys.readouterr().out
        if "\n" in printed:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    line = printed.splitlines()[0]
    url = line.split()[4]
    assert url.startswith("http://127.0.0.1:")
    assert line == readiness_line(config, url, "tgispy/sim (simulated)")
