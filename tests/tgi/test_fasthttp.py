"""The transport contract, run over both transports (aiohttp's and FastTransport) on real sockets.

Raw socket servers on 127.0.0.1 (one thread per connection) play the server's part byte for byte:
framing (Content-Length, chunked, read-until-close), keep-alive and ``Connection: close``, stale
keep-alive connections, bodies cut short, silent and trickling servers, redirects and TLS. Then
``HFClientTGI(transport=FastTransport())`` runs end to end against the sim server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.errors import (
    ConfigError,
    ConnectError,
    NoHealthyReplicaError,
    TGITimeoutError,
    TransportError,
    ValidationError,
)
from tgispy.tgi import (
    AiohttpTransport,
    AsyncTransport,
    AttemptTimeouts,
    FastTransport,
    HTTPRequest,
    HTTPResponse,
    RetryPolicy,
    _fasthttp,
)

TRANSPORTS: dict[str, Callable[..., AsyncTransport]] = {
    "aiohttp": AiohttpTransport,
    "fast": FastTransport,
}


@pytest.fixture(params=list(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> AsyncTransport:
    return TRANSPORTS[request.param]()


# ---- a raw HTTP/1.1 server ----------------------------------------------------------------------
class Conn:
    """One accepted connection, as the server's script sees it."""

    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server
        self.buf = b""

    def read_request(self) -> tuple[str, dict[str, str], bytes] | None:
        """The next request (head line, lower-cased headers, body), or None at EOF."""
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                self.server.closed_by_client.set()
                return None
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        line, *rest = head.decode("latin-1").split("\r\n")
        headers = {}
        for item in rest:
            name, _, value = item.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        body, self.buf = self.buf[:length], self.buf[length:]
        self.server.requests.append((line, headers, body))
        return line, headers, body

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


Script = Callable[[Conn, int], None]


class RawServer:
    """A TCP server on 127.0.0.1 running ``script(conn, index)`` for each accepted connection."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.closed_by_client = threading.Event()
        self.ended = 0  # connections whose script returned (and which the server closed)
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for s in [self.sock, *self._socks]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(2)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.sock.accept()
            except OSError:
                continue
            if self._stop.is_set():
                sock.close()
                return
            index = self.connections
            self.connections += 1
            self._socks.append(sock)
            thread = threading.Thread(target=self._run, args=(sock, index), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, sock: socket.socket, index: int) -> None:
        try:
            sock.settimeout(None)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
                self._socks.append(sock)
            self.script(Conn(sock, self), index)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self.ended += 1

    def wait(self, stop: Callable[[], bool]) -> None:
        for _ in range(200):
            if stop() or self._stop.is_set():
                return
            time.sleep(0.01)


def reply(body: bytes = b"ok", status: str = "200 OK", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


def serve_forever(answer: Callable[[str, dict[str, str], bytes], bytes]) -> Script:
    """A keep-alive script: answer every request on the connection until EOF."""

    def script(conn: Conn, index: int) -> None:
        while (got := conn.read_request()) is not None:
            conn.send(answer(*got))

    return script


def echo(line: str, headers: dict[str, str], body: bytes) -> bytes:
    doc = {"line": line, "headers": headers, "body": body.decode()}
    return reply(json.dumps(doc).encode(), headers="Content-Type: application/json\r\nX-Up: A\r\n")


def post(url: str, *, body: bytes = b"{}", **timeouts: float | None) -> HTTPRequest:
    return HTTPRequest(
        "POST", url, {"Content-Type": "application/json"}, body, AttemptTimeouts(**timeouts)
    )


async def collect(chunks: AsyncIterator[HTTPResponse | bytes]) -> tuple[HTTPResponse, bytes]:
    items = [item async for item in chunks]
    head = items[0]
    assert isinstance(head, HTTPResponse)
    rest = items[1:]
    assert all(isinstance(b, bytes) for b in rest)
    return head, b"".join(b for b in rest if isinstance(b, bytes))


# ---- requests and responses ---------------------------------------------------------------------
async def test_the_request_on_the_wire_and_the_response(transport: AsyncTransport) -> None:
    with RawServer(serve_forever(echo)) as server:
        req = HTTPRequest(
            "POST",
            server.url + "/generate?x=1",
            {"Content-Type": "application/json", "Authorization": "Bearer t"},
            b'{"inputs": "hi"}',
        )
        resp = await transport.send(req)
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-up"] == "A"  # names lower-cased
    doc = json.loads(resp.body)
    assert doc["line"] == "POST /generate?x=1 HTTP/1.1"
    assert doc["body"] == '{"inputs": "hi"}'
    headers = doc["headers"]
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["content-length"] == "16"
    assert headers["user-agent"] == "tgispy"
    assert headers["authorization"] == "Bearer t"


async def test_a_get_has_no_body(transport: AsyncTransport) -> None:
    with RawServer(serve_forever(echo)) as server:
        resp = await transport.send(HTTPRequest("GET", server.url + "/info"))
    doc = json.loads(resp.body)
    assert doc["line"] == "GET /info HTTP/1.1" and doc["body"] == ""


async def test_a_header_with_a_line_break_is_refused(transport: AsyncTransport) -> None:
    with RawServer(serve_forever(echo)) as server:
        bad = HTTPRequest("GET", server.url + "/info", {"X-K": "a\r\nX-Injected: 1"})
        with pytest.raises(TransportError):
            await transport.send(bad)
        assert not server.requests


async def test_a_query_is_sent_percent_encoded(transport: AsyncTransport) -> None:
    with RawServer(serve_forever(echo)) as server:
        resp = await transport.send(HTTPRequest("GET", server.url + "/info?q=caf\u00e9&x=1"))
    assert json.loads(resp.body)["line"] == "GET /info?q=caf%C3%A9&x=1 HTTP/1.1"


BODY = b"".join(b"line %d of the body\n" % i for i in range(2000))


def chunked(body: bytes, size: int = 1000) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
async def test_body_framings(transport: AsyncTransport, framing: str) -> None:
    def script(conn: Conn, index: int) -> None:
        while conn.read_request() is not None:
            if framing == "content-length":
                conn.send(reply(BODY))
            elif framing == "chunked":
                conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                conn.send(chunked(BODY))
            else:
                conn.send(b"HTTP/1.1 200 OK\r\n\r\n" + BODY)
                return  # the body ends when the server closes

    with RawServer(script) as server:
        for _ in range(2):
            resp = await transport.send(post(server.url + "/generate"))
            assert resp.status == 200 and resp.body == BODY
            head, body = await collect(transport.stream(post(server.url + "/generate_stream")))
            assert head.status == 200 and head.body == b"" and body == BODY
        # keep-alive framings reuse one connection; a read-until-close body cannot
        assert server.connections == (4 if framing == "until-close" else 1)


async def test_connection_close_is_not_reused(transport: AsyncTransport) -> None:
    def script(conn: Conn, index: int) -> None:
        if conn.read_request() is not None:
            conn.send(reply(b"once", headers="Connection: close\r\n"))

    with RawServer(script) as server:
        for _ in range(3):
            assert (await transport.send(post(server.url + "/g"))).body == b"once"
        assert server.connections == 3


async def test_the_server_closing_an_idle_connection(transport: AsyncTransport) -> None:
    def script(conn: Conn, index: int) -> None:
        if conn.read_request() is not None:
            conn.send(reply(b"a"))  # keep-alive, then the server drops it while idle

    with RawServer(script) as server:
        assert (await transport.send(post(server.url + "/g"))).body == b"a"
        while server.ended < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the client's loop sees the FIN
        assert (await transport.send(post(server.url + "/g"))).body == b"a"
        assert server.connections == 2


def first_then_eof(then: bytes | None) -> Script:
    """Connection 0 answers once, then reads the next request and closes without a byte;
    later connections answer ``then`` (``None``: they close at once too)."""

    def script(conn: Conn, index: int) -> None:
        if index == 0:
            if conn.read_request() is not None:
                conn.send(reply(b"first"))
            conn.read_request()
            return  # EOF before any response byte
        while then is not None and conn.read_request() is not None:
            conn.send(reply(then))

    return script


async def test_the_stale_keep_alive_race_is_retried_once_on_a_fresh_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (what an idle timeout racing the request looks like; counted as idle long enough)
    monkeypatch.setattr(_fasthttp, "_STALE_IDLE_S", 0.0)
    transport = FastTransport()
    with RawServer(first_then_eof(b"fresh")) as server:
        assert (await transport.send(post(server.url + "/g"))).body == b"first"
        assert (await transport.send(post(server.url + "/g"))).body == b"fresh"
        assert server.connections == 2
    with RawServer(first_then_eof(None)) as server:
        assert (await transport.send(post(server.url + "/g"))).body == b"first"
        with pytest.raises(TransportError) as info:  # retried once, and no more
            await transport.send(post(server.url + "/g"))
        assert not isinstance(info.value, ConnectError)
        assert server.connections == 2  # one fresh connection, closed at once too


async def test_a_busy_connection_dying_mid_request_is_not_retried() -> None:
    # Reused within milliseconds: the server died with the request, it did not idle out.
    transport = FastTransport()
    with RawServer(first_then_eof(b"fresh")) as server:
        assert (await transport.send(post(server.url + "/g"))).body == b"first"
        with pytest.raises(TransportError) as info:
            await transport.send(post(server.url + "/g"))
        assert not isinstance(info.value, ConnectError)
        assert server.connections == 1


async def test_a_fresh_connection_closed_before_the_response_is_an_error(
    transport: AsyncTransport,
) -> None:
    def script(conn: Conn, index: int) -> None:
        conn.read_request()  # and close without a byte

    with RawServer(script) as server:
        with pytest.raises(TransportError) as info:
            await transport.send(post(server.url + "/g"))
        assert not isinstance(info.value, (ConnectError, TGITimeoutError))
        assert len(server.requests) == 1  # not retried: the connection was not a reused one


@pytest.mark.parametrize("route", ["send", "stream"])
async def test_a_body_cut_short_is_a_transport_error(transport: AsyncTransport, route: str) -> None:
    def script(conn: Conn, index: int) -> None:
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)

    with RawServer(script) as server:
        with pytest.raises(TransportError) as info:
            if route == "send":
                await transport.send(post(server.url + "/g"))
            else:
                await collect(transport.stream(post(server.url + "/g")))
        assert not isinstance(info.value, TGITimeoutError)


async def test_a_refused_connection_is_a_connect_error(transport: AsyncTransport) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
        await transport.send(post(f"http://127.0.0.1:{port}/g"))


async def test_a_malformed_response_is_a_transport_error(transport: AsyncTransport) -> None:
    def script(conn: Conn, index: int) -> None:
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 abc nonsense\r\n\r\n")

    with RawServer(script) as server, pytest.raises(TransportError):
        await transport.send(post(server.url + "/g"))


# ---- timeouts -----------------------------------------------------------------------------------
def silent(conn: Conn, index: int) -> None:
    conn.read_request()
    conn.server.wait(lambda: False)


def trickle(interval: float, count: int) -> Script:
    """Answer with a body of ``count`` bytes, one every ``interval`` seconds."""

    def script(conn: Conn, index: int) -> None:
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % count)
            for _ in range(count):
                time.sleep(interval)
                conn.send(b"x")

    return script


@pytest.mark.parametrize(
    "timeouts",
    [{"read": 0.2}, {"total": 0.2}, {"total": 0.0}, {"read": 0.0}],
    ids=["read", "total", "spent-total", "spent-read"],
)
async def test_a_silent_server_times_out(
    transport: AsyncTransport, timeouts: dict[str, float]
) -> None:
    with RawServer(silent) as server:
        started = time.monotonic()
        with pytest.raises(TGITimeoutError, match="timed out"):
            await transport.send(
                HTTPRequest("POST", server.url + "/g", timeouts=AttemptTimeouts(**timeouts))
            )
        assert time.monotonic() - started < 1.5


async def test_the_read_limit_is_between_chunks_and_the_total_limit_is_the_whole(
    transport: AsyncTransport,
) -> None:
    # 6 bytes 0.05 s apart: each gap is well within read=0.4, the whole (~0.3 s) is not
    # within total=0.15.
    with RawServer(trickle(0.05, 6)) as server:
        assert (await transport.send(post(server.url + "/g", read=0.4))).body == b"x" * 6
        _, body = await collect(transport.stream(post(server.url + "/g", read=0.4)))
        assert body == b"x" * 6
        with pytest.raises(TGITimeoutError):
            await transport.send(post(server.url + "/g", read=0.4, total=0.15))


async def test_a_stream_read_limit_between_chunks(transport: AsyncTransport) -> None:
    with RawServer(trickle(0.5, 3)) as server:
        chunks = transport.stream(post(server.url + "/g", read=0.15))
        head = await chunks.__anext__()
        assert isinstance(head, HTTPResponse) and head.status == 200
        with pytest.raises(TGITimeoutError):
            await chunks.__anext__()
        await chunks.aclose()


async def test_one_timer_per_attempt_for_all_three_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    transport = FastTransport()
    with RawServer(serve_forever(echo)) as server:
        await transport.send(post(server.url + "/g"))  # the connection, opened untimed
        monkeypatch.setattr(loop, "call_at", counting)
        for _ in range(5):
            resp = await transport.send(post(server.url + "/g", connect=5, read=10, total=20))
            assert resp.status == 200
        # each attempt: its earliest deadline (the read limit), armed once
        assert len(armed) == 5


async def test_a_connect_timeout_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # No loopback address leaves a SYN unanswered, so the connect itself hangs here.
    loop = asyncio.get_running_loop()

    async def hang(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(loop, "create_connection", hang)
    with pytest.raises(TGITimeoutError, match=r"timed out talking to http://127\.0\.0\.1:9"):
        await FastTransport().send(post("http://127.0.0.1:9/g", connect=0.05))
    with pytest.raises(TGITimeoutError):
        await FastTransport().send(post("http://127.0.0.1:9/g", connect=5.0, total=0.05))
    # the task is not left cancelled: it still awaits normally
    await asyncio.sleep(0.01)


# ---- redirects ----------------------------------------------------------------------------------
async def test_same_origin_redirects_are_followed(transport: AsyncTransport) -> None:
    def answer(line: str, headers: dict[str, str], body: bytes) -> bytes:
        if line.startswith("POST /old "):
            return reply(b"", "307 Temporary Redirect", "Location: /new\r\n")
        return reply(b"moved:" + body)

    with RawServer(serve_forever(answer)) as server:
        resp = await transport.send(post(server.url + "/old", body=b"payload"))
    assert resp.status == 200 and resp.body == b"moved:payload"


async def test_cross_origin_and_endless_redirects_are_refused(transport: AsyncTransport) -> None:
    def answer(line: str, headers: dict[str, str], body: bytes) -> bytes:
        if "/away" in line:
            return reply(b"", "308 Permanent Redirect", "Location: http://localhost:1/x\r\n")
        return reply(b"", "307 Temporary Redirect", "Location: /loop\r\n")

    with RawServer(serve_forever(answer)) as server:
        with pytest.raises(TransportError, match="another origin"):
            await transport.send(post(server.url + "/away"))
        with pytest.raises(TransportError, match="redirects"):
            await transport.send(post(server.url + "/loop"))


# ---- streams ------------------------------------------------------------------------------------
async def test_a_stream_yields_the_head_then_chunks_as_they_arrive(
    transport: AsyncTransport,
) -> None:
    events = [b'data: {"n": %d}\n\n' % i for i in range(3)]
    sent = threading.Event()

    def script(conn: Conn, index: int) -> None:
        got = conn.read_request()
        assert got is not None
        sent.set()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        conn.send(b"Transfer-Encoding: chunked\r\n\r\n")
        for event in events:
            conn.send(b"%x\r\n%s\r\n" % (len(event), event))
            time.sleep(0.02)
        conn.send(b"0\r\n\r\n")

    with RawServer(script) as server:
        head, body = await collect(transport.stream(post(server.url + "/generate_stream")))
        assert server.requests[0][1]["accept"] == "text/event-stream"
    assert head.status == 200 and head.headers["content-type"] == "text/event-stream"
    assert body == b"".join(events)


async def test_a_non_2xx_stream_is_one_response_with_its_body(transport: AsyncTransport) -> None:
    error = b'{"error": "Input validation error", "error_type": "validation"}'

    with RawServer(serve_forever(lambda *a: reply(error, "422 Unprocessable Entity"))) as server:
        items = [i async for i in transport.stream(post(server.url + "/generate_stream"))]
    assert len(items) == 1
    assert isinstance(items[0], HTTPResponse)
    assert items[0].status == 422 and items[0].body == error


async def test_closing_a_stream_early_never_reuses_its_connection(
    transport: AsyncTransport,
) -> None:
    def script(conn: Conn, index: int) -> None:
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            conn.send(b"5\r\nfirst\r\n")
            if index == 0:
                conn.server.wait(conn.server.closed_by_client.is_set)
                return
            conn.send(b"0\r\n\r\n")

    with RawServer(script) as server:
        chunks = transport.stream(post(server.url + "/s"))
        assert isinstance(await chunks.__anext__(), HTTPResponse)
        assert await chunks.__anext__() == b"first"
        await chunks.aclose()
        _, body = await collect(transport.stream(post(server.url + "/s")))
        assert body == b"first"
        assert server.connections == 2


async def test_a_large_stream_read_slowly_arrives_whole(transport: AsyncTransport) -> None:
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB: past the pause threshold

    def script(conn: Conn, index: int) -> None:
        while conn.read_request() is not None:
            conn.send(reply(big))

    with RawServer(script) as server:
        received = bytearray()
        async for item in transport.stream(post(server.url + "/s")):
            if isinstance(item, bytes):
                received += item
                await asyncio.sleep(0.002)
        assert received == big
        # the connection went back to the pool (fully read, resumed)
        assert (await transport.send(post(server.url + "/s"))).body == big
        assert server.connections == 1


# ---- TLS ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, crt


async def test_tls_verify_settings(cert: tuple[Path, Path]) -> None:
    key, crt = cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, key)
    with RawServer(serve_forever(echo), tls=context) as server:
        url = server.url + "/g"
        for verify in (False, str(crt)):
            resp = await FastTransport(verify=verify).send(post(url))
            assert json.loads(resp.body)["line"] == "POST /g HTTP/1.1"
        with pytest.raises(ConnectError, match="cannot connect"):
            await FastTransport(verify=True).send(post(url))


def test_bad_verify_arguments_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a readable CA bundle"):
        FastTransport(verify=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="verify must be"):
        FastTransport(verify=1)  # type: ignore[arg-type]
    assert repr(FastTransport(verify=False)) == "FastTransport(verify=False)"


# ---- packaging ----------------------------------------------------------------------------------
def test_importing_tgispy_does_not_import_httptools() -> None:
    code = "import sys, tgispy, tgispy.tgi; print('httptools' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_without_httptools_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)
    with pytest.raises(ImportError, match=r"pip install 'tgispy\[speed\]'"):
        FastTransport()


def test_default_transport_is_fast_with_the_speed_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from tgispy.tgi import AiohttpTransport, TGIClient, default_transport

    monkeypatch.delenv("TGISPY_TRANSPORT", raising=False)
    assert type(default_transport()) is FastTransport  # httptools is installed here
    assert type(TGIClient(["http://127.0.0.1:9"]).transport) is FastTransport
    monkeypatch.setenv("TGISPY_TRANSPORT", "aiohttp")
    assert type(TGIClient(["http://127.0.0.1:9"]).transport) is AiohttpTransport
    monkeypatch.setenv("TGISPY_TRANSPORT", "http2")
    with pytest.raises(ConfigError, match="use 'aiohttp' or 'fast'"):
        default_transport()


def test_default_transport_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from tgispy.tgi import AiohttpTransport, default_transport

    monkeypatch.setitem(sys.modules, "httptools", None)  # not importable
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # nor found
    monkeypatch.delenv("TGISPY_TRANSPORT", raising=False)
    assert type(default_transport(verify=False)) is AiohttpTransport
    monkeypatch.setenv("TGISPY_TRANSPORT", "fast")  # asked for explicitly: say what to install
    with pytest.raises(ImportError, match=r"pip install 'tgispy\[speed\]'"):
        default_transport()


def test_loop_shutdown_closes_pooled_connections() -> None:
    with RawServer(serve_forever(echo)) as server:

        async def main() -> int:
            resp = await FastTransport().send(post(server.url + "/g"))
            return resp.status

        assert asyncio.run(main()) == 200
        server.wait(server.closed_by_client.is_set)
        assert server.closed_by_client.is_set()


def test_on_uvloop_the_speed_extras_other_half() -> None:
    """tgispy[speed] pairs FastTransport with uvloop (the Makefile installs the extra): an
    exchange, a stream and the pool's closing at loop shutdown work on uvloop's loop too."""
    import uvloop

    with RawServer(serve_forever(echo)) as server:

        async def main() -> tuple[HTTPResponse, HTTPResponse, bytes]:
            transport = FastTransport()
            whole = await transport.send(post(server.url + "/g", body=b'{"a": 1}'))
            head, streamed = await collect(transport.stream(post(server.url + "/s")))
            return whole, head, streamed

        whole, head, streamed = uvloop.run(main())
        assert whole.status == head.status == 200
        assert json.loads(whole.body)["body"] == '{"a": 1}'
        doc = json.loads(streamed)
        assert doc["line"].startswith("POST /s ")
        assert doc["headers"]["accept"] == "text/event-stream"
        server.wait(server.closed_by_client.is_set)
        assert server.closed_by_client.is_set()


# ---- end to end: HFClientTGI over FastTransport against the sim server -------------------------
@pytest.fixture
async def replica() -> AsyncIterator[Any]:
    from tests.fleet_integration._replicas import sim, start_replica

    r = await start_replica(sim(texts=("one two three four five six",), token_latency_s=0.0))
    yield r
    await r.stop()


async def test_hfclient_generate_and_stream(replica: Any) -> None:
    lm = dspy.HFClientTGI("m", None, replica.url, cache=False, stop=[], transport=FastTransport())
    for max_tokens in (1, 3, 20):
        whole = (await lm.acall("x", max_tokens=max_tokens))[0]
        streamed = "".join([p async for p in lm.astream("x", max_tokens=max_tokens)])
        assert streamed == whole and whole
    assert replica.requests["/generate"] == 3 and replica.requests["/generate_stream"] == 3


async def test_hfclient_errors_are_typed() -> None:
    from tests.fleet_integration._replicas import sim, start_replica

    r = await start_replica(sim(error_rates={422: 1.0}))
    try:
        lm = dspy.HFClientTGI("m", None, r.url, cache=False, transport=FastTransport())
        with pytest.raises(ValidationError):
            await lm.acall("x", max_tokens=5)
        with pytest.raises(ValidationError):
            _ = [p async for p in lm.astream("x", max_tokens=5)]
    finally:
        await r.stop()


async def test_hfclient_retries_dropped_connections() -> None:
    from tests.fleet_integration._replicas import sim, start_replica

    r = await start_replica(sim(texts=("ok then",), drop_rate=0.3, seed=3))
    try:
        lm = dspy.HFClientTGI(
            "m",
            None,
            r.url,
            cache=False,
            transport=FastTransport(),
            retry=RetryPolicy(max_attempts=8, backoff_initial=0.0),
        )
        for i in range(10):
            assert (await lm.acall(f"q{i}", max_tokens=5))[0] == "ok then"
        assert r.requests["/generate"] > 10  # some connections were dropped and retried
    finally:
        await r.stop()


def test_one_transport_shared_by_threads_of_the_sync_face(replica_thread: str) -> None:
    lm = dspy.HFClientTGI("m", None, replica_thread, cache=False, transport=FastTransport())
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(8):
                assert lm(f"t{n} q{i}", max_tokens=3) == ["ok ok ok"]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


@pytest.fixture
def replica_thread() -> Iterator[str]:
    from tgispy.testing import Reply, ScriptedTGI

    with ScriptedTGI([Reply.generate("ok ok ok")]) as server:
        yield server.url


@pytest.mark.parametrize(
    ("timeout", "retry"),
    [(1.0, None), (None, RetryPolicy(deadline=1.0))],
    ids=["timeout", "deadline"],
)
def test_hfclient_calls_end_within_their_deadline(
    timeout: float | None, retry: RetryPolicy | None
) -> None:
    options = {} if timeout is None else {"timeout": timeout}
    with RawServer(silent) as server:
        lm = dspy.HFClientTGI(
            "m", None, server.url, options, cache=False, retry=retry, transport=FastTransport()
        )
        started = time.monotonic()
        with pytest.raises((TGITimeoutError, NoHealthyReplicaError)):
            lm("x")
        assert time.monotonic() - started < 1.0 + 0.5
