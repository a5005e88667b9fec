"""Issue 13's client defects, each pinned: streams, secrets, redirects, userinfo, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import (
    ConfigError,
    NoHealthyReplicaError,
    TGIError,
    TGITimeoutError,
    TransportError,
)
from tgispy.testing import MockTransport, Recorded, Reply, ScriptedTGI
from tgispy.tgi import RetryPolicy, RoutingPolicy

TOKEN = "hf_SuperSecretToken123456"


def lm_over(transport: MockTransport, **kwargs: Any) -> dspy.HFClientTGI:
    return dspy.HFClientTGI(
        "m", 8080, "http://tgi.test", cache=False, transport=transport, **kwargs
    )


# ---- 1. streams deliver their last token ---------------------------------------------------------
@pytest.mark.parametrize("finish", ["length", "stop_sequence", "eos_token"])
def test_stream_joins_to_the_non_streamed_text(finish: str) -> None:
    tokens = ["one", " two", " three"]
    reply = Reply.stream(tokens, finish_reason=finish)
    text = "".join(tokens)
    transport = MockTransport(
        lambda req: reply if req.path == "/generate_stream" else Reply.generate(text)
    )
    lm = lm_over(transport, stop=[])
    pieces = list(lm.stream("x", max_tokens=3))
    assert "".join(pieces) == lm("x", max_tokens=3)[0] == text
    assert lm.history[-1]["response"]["choices"][0]["text"] == text


def test_stream_final_special_token_is_not_text() -> None:
    transport = MockTransport([Reply.stream(["Pa", "ris"], final_token="</s>")])
    assert "".join(lm_over(transport).stream("x")) == "Paris"


async def test_stream_over_the_sim_server_matches_generate() -> None:
    from tests.fleet_integration._replicas import sim, start_replica

    replica = await start_replica(sim(texts=("one two three four five six",)))
    try:
        lm = dspy.HFClientTGI("m", None, replica.url, cache=False, stop=[])
        for max_tokens in (1, 3, 6, 20):
            whole = (await lm.acall("x", max_tokens=max_tokens))[0]
            streamed = "".join([p async for p in lm.astream("x", max_tokens=max_tokens)])
            assert streamed == whole, max_tokens
    finally:
        await replica.stop()


# ---- 3. credentials never leak through a 200 -----------------------------------------------------
BAD_200_BODIES = {
    "not json": Reply(200, f"<html>login page, your token: Bearer {TOKEN}</html>".encode()),
    "wrong shape": Reply(200, {"unexpected": f"Bearer {TOKEN}"}),
    "error field": Reply(200, {"error": f"Authorization: Bearer {TOKEN}", "error_type": "x"}),
    "garbled sse": Reply(200, sse=(f"data: {{not json {TOKEN}\n\n".encode(),)),
    "sse error event": Reply(200, sse=({"error": f"echo {TOKEN}", "error_type": "generation"},)),
}


@pytest.mark.parametrize("kind", list(BAD_200_BODIES))
def test_no_credential_in_any_surface(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reply = BAD_200_BODIES[kind]
    transport = MockTransport([reply])
    lm = lm_over(
        transport,
        http_request_kwargs={"headers": {"Authorization": f"Bearer {TOKEN}"}},
        retry=RetryPolicy(max_attempts=2, backoff_initial=0.0),
    )
    with pytest.raises(TGIError) as info:
        if reply.sse is not None:
            list(lm.stream("x"))
        else:
            lm("x")
    err = info.value
    surfaces = [
        str(err),
        repr(err),
        pickle.dumps(err).decode("latin-1"),
        "\n".join(getattr(err, "__notes__", [])),
        str(err.__cause__),
        json.dumps(lm.stats(), default=str),
        caplog.text,
        repr(lm),
        json.dumps(lm.history.snapshot(), default=str),
    ]
    for surface in surfaces:
        assert TOKEN not in surface
    # the server did receive the credential
    assert transport.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


# ---- 4. no credentials across origins ------------------------------------------------------------
def test_cross_origin_redirect_is_not_followed() -> None:
    with ScriptedTGI([Reply.generate("other origin")]) as other:
        target = other.url.replace("127.0.0.1", "localhost") + "/generate"
        redirect = Reply(307, b"", headers={"Location": target})
        with ScriptedTGI([redirect]) as first:
            lm = dspy.HFClientTGI(
                "m",
                None,
                first.url,
                {"headers": {"X-Api-Key": TOKEN}},
                cache=False,
                retry=RetryPolicy.none(),
            )
            with pytest.raises(TransportError, match="another origin") as info:
                lm("x")
        assert not [r for r in other.requests if r.path == "/generate"]
        assert TOKEN not in str(info.value)


def test_same_origin_redirect_is_followed() -> None:
    def handle(req: Recorded) -> Reply:
        if req.path == "/generate":
            return Reply(307, b"", headers={"Location": "/v2/generate"})
        return Reply.generate("moved")

    with ScriptedTGI(handle) as server:
        lm = dspy.HFClientTGI("m", None, server.url, cache=False)
        assert lm("x") == ["moved"]


# ---- 5. URL userinfo is a secret -----------------------------------------------------------------
def test_url_userinfo_is_sent_as_basic_auth_and_shown_nowhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "Pa55wordThatIsLong"
    with ScriptedTGI([Reply.error(503, f"echo {password}", "unavailable")]) as server:
        url = server.url.replace("http://", f"http://alice:{password}@")
        lm = dspy.HFClientTGI(
            "m", None, url, cache=False, retry=RetryPolicy(max_attempts=2, backoff_initial=0)
        )
        with pytest.raises(TGIError) as info:
            lm("x")
        auth = server.requests[-1].headers["Authorization"]
    assert auth.startswith("Basic ")
    for surface in (repr(lm), str(lm.stats()), str(info.value), info.value.replica, caplog.text):
        assert password not in str(surface)


def test_a_rejected_url_does_not_echo_its_query_string() -> None:
    with pytest.raises(ConfigError) as info:
        dspy.HFClientTGI("m", None, f"http://h.test/?api_key={TOKEN}")
    assert TOKEN not in str(info.value)


# ---- 6. every call ends within its deadline ------------------------------------------------------
@contextlib.contextmanager
def misbehaving_server(mode: str) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts and then stays silent, or trickles a byte a second."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conns.append(conn)
            if mode == "trickle":
                threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    def trickle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(60):
                if stop.wait(1.0):
                    return
                conn.sendall(b"x")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for c in conns:
            c.close()
        sock.close()


@pytest.mark.parametrize(
    ("mode", "options", "retry", "bound"),
    [
        ("silent", {}, RetryPolicy(deadline=1.5), 1.5),
        ("silent", {"timeout": 1.0}, None, 1.0),
        # (connect, read) bounds each attempt by connect + read: 4 attempts, short backoffs
        ("trickle", {"timeout": (0.5, 1.5)}, None, 4 * 2.0 + 0.5),
        ("trickle", {}, RetryPolicy(deadline=1.5), 1.5),
    ],
    ids=["silent-deadline", "silent-timeout", "trickle-pair", "trickle-deadline"],
)
def test_calls_end_within_their_deadline(
    mode: str, options: dict[str, Any], retry: RetryPolicy | None, bound: float
) -> None:
    with misbehaving_server(mode) as url:
        lm = dspy.HFClientTGI("m", None, url, options, cache=False, retry=retry)
        started = time.monotonic()
        # timeouts all the way, or, once they ejected the only replica, "no healthy replica"
        with pytest.raises((TGITimeoutError, NoHealthyReplicaError)) as info:
            lm("x")
        assert "timed out" in str(info.value) or "timed out" in "".join(info.value.__notes__)
        assert time.monotonic() - started < bound + 0.5


# ---- 10. constructor errors name the argument and the fix ----------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"retry": 3}, "retry must be a tgispy.tgi.RetryPolicy"),
        ({"routing": "p2c"}, "routing must be a tgispy.tgi.RoutingPolicy"),
        ({"http_request_kwargs": "abc"}, "http_request_kwargs must be a dict"),
        ({"http_request_kwargs": {"headers": "x"}}, "['headers'] must be a dict"),
        ({"http_request_kwargs": {"timeout": (1, "a")}}, "timeout[1] (read)"),
        ({"history_size": -1}, "history_size must be an int >= 0"),
        ({"http_request_kwargs": {"headers": {"X-K": "a\r\nb"}}}, "CR, LF or NUL"),
        ({"http_request_kwargs": {"verify": "/nonexistent.pem"}}, "not a readable CA bundle"),
        ({"url": "http://h st"}, "whitespace"),
    ],
)
def test_bad_constructor_arguments_are_config_errors(kwargs: dict[str, Any], names: str) -> None:
    args: dict[str, Any] = {"model": "m", "port": 8080, "url": "http://localhost", **kwargs}
    with pytest.raises(ConfigError) as info:
        dspy.HFClientTGI(**args)
    assert names in str(info.value)


def test_routing_policy_rejects_a_bad_panic_threshold() -> None:
    with pytest.raises(ConfigError, match="panic_threshold"):
        RoutingPolicy(panic_threshold=2.0)


# ---- 12. two TLS settings in one process exit cleanly --------------------------------------------
def test_two_verify_settings_exit_without_tracebacks() -> None:
    script = """
import tgispy as dspy
from tgispy.testing import ScriptedTGI, Reply
with ScriptedTGI([Reply.generate("ok")]) as s:
    a = dspy.HFClientTGI("m", None, s.url, {"verify": True}, cache=False)
    b = dspy.HFClientTGI("m", None, s.url, {"verify": False}, cache=False)
    print(a("x"), b("x"))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "['ok'] ['ok']" in done.stdout
    assert "Traceback" not in done.stderr and "destroyed" not in done.stderr, done.stderr


async def test_mock_transport_needs_no_event_loop_tricks() -> None:
    lm = lm_over(MockTransport([Reply.generate("async ok")]))
    assert await lm.acall("x") == ["async ok"]
    await asyncio.sleep(0)


@pytest.mark.model
@pytest.mark.parametrize(
    "kwargs",
    [{"max_tokens": 6, "stop": []}, {"max_tokens": 40, "stop": ["."]}, {"max_tokens": 40}],
    ids=["length", "stop-sequence", "dspy-default-stops"],
)
def test_stream_joins_to_the_non_streamed_text_on_the_real_model(
    model_server: Any, kwargs: dict[str, Any]
) -> None:
    lm = dspy.HFClientTGI("m", model_server.port, "http://127.0.0.1", cache=False, temperature=0)
    prompt = "The three primary colors are"
    whole = lm(prompt, **kwargs)[0]
    assert whole
    assert "".join(lm.stream(prompt, **kwargs)) == whole
