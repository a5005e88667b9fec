"""Live discovery: a replica URL whose name resolves to several addresses, re-resolved."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import pytest
from aiohttp import web

from tgispy.errors import NoHealthyReplicaError
from tgispy.server import ServerConfig, SimConfig, create_app
from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi._client import TGIClient
from tgispy.tgi._discovery import Discovery, expand, resolve_host
from tgispy.tgi._policy import RoutingPolicy
from tgispy.tgi._response import parse_generate_response
from tgispy.tgi._routing import Pick, Probe, ReplicaSet
from tgispy.tgi._transport import HTTPResponse, close_sessions

from ._fakes import FakeClock

SEED = "http://fleet.test:8080"


def ip(n: int) -> str:
    return f"http://127.0.0.{n}:8080"


class Names:
    """A fake resolver whose answers the test changes; ``None`` means "lookup fails"."""

    def __init__(self, addresses: Sequence[str] | None) -> None:
        self.addresses = addresses
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append((host, port))
        if self.addresses is None:
            raise OSError("Name or service not known")
        return list(self.addresses)


def parse(resp: HTTPResponse, replica: str) -> str:
    return parse_generate_response(resp.body).sequences[0].text


# ---- pure parts -------------------------------------------------------------------------------
def test_expand_keeps_scheme_port_and_path() -> None:
    assert expand("http://svc:9000/prefix", ["10.1.0.5", "10.1.0.6", "10.1.0.5"]) == [
        "http://10.1.0.5:9000/prefix",
        "http://10.1.0.6:9000/prefix",
    ]
    assert expand("http://svc", ["::1"]) == ["http://[::1]"]


async def test_discovery_keeps_last_known_on_bad_answers(caplog: pytest.LogCaptureFixture) -> None:
    names = Names(["127.0.0.2", "127.0.0.3"])
    d = Discovery([SEED, "http://127.0.0.9:1", "https://tls.test"], names)
    assert d.active and names.lookups == []
    assert d.urls() == [SEED, "http://127.0.0.9:1", "https://tls.test"]
    assert await d.refresh() == [ip(2), ip(3), "http://127.0.0.9:1", "https://tls.test"]
    assert names.lookups == [("fleet.test", 8080)]  # IP literals and https names are not looked up
    names.addresses = ["127.0.0.3", "127.0.0.4"]  # a changing answer
    assert (await d.refresh())[:2] == [ip(3), ip(4)]
    with caplog.at_level(logging.WARNING, logger="tgispy.tgi._discovery"):
        for bad in (None, [], None):
            names.addresses = bad
            assert (await d.refresh())[:2] == [ip(3), ip(4)]  # last known kept
    unresolved = [r.getMessage() for r in caplog.records if "did not resolve" in r.getMessage()]
    assert len(unresolved) == 1 and "fleet.test" in unresolved[0]
    assert "skips https://tls.test" in caplog.text
    names.addresses = ["127.0.0.5"]
    assert (await d.refresh())[:1] == [ip(5)]
    assert not Discovery(["http://10.0.0.1:80"], names).active


async def test_slow_resolver_times_out_and_default_resolver_works() -> None:
    async def hang(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(10)
        return []

    d = Discovery([SEED], hang)
    assert await d.refresh(timeout=0.01) == [SEED]
    assert "127.0.0.1" in await resolve_host("localhost", 80)


def test_replica_set_update_probes_new_and_drains_removed() -> None:
    clock = FakeClock()
    rs = ReplicaSet([ip(2), ip(3)], RoutingPolicy(), clock=clock, rng=random.Random(0))
    rs.on_start(ip(3))  # a request in flight on the replica about to be removed
    assert rs.update([ip(2), ip(4)]) == ([ip(4)], [ip(3)])
    assert rs.urls == (ip(2), ip(4))
    assert rs.choose() == Probe(ip(4))  # a health check before any traffic
    rs.on_probe_result(ip(4), ok=True)
    assert {rs.choose() for _ in range(30)} == {Pick(ip(2)), Pick(ip(4))}  # never the drained
    stats = rs.stats()
    assert stats[ip(3)]["draining"] and stats[ip(3)]["in_flight"] == 1
    rs.on_success(ip(3), 0.1)  # its last request ends: forgotten
    assert ip(3) not in rs.stats()
    assert rs.update([]) == ([], [])  # nothing resolved: keep the set
    # a replica re-added while still draining keeps its state and takes traffic at once
    rs.on_start(ip(2))
    rs.update([ip(4)])
    assert rs.stats()[ip(2)]["draining"]
    rs.update([ip(2), ip(4)])
    assert not rs.stats()[ip(2)]["draining"]
    assert rs.stats()[ip(2)]["requests"] >= 1
    # probe results and capacities of replicas removed meanwhile are ignored
    rs.on_probe_result("http://gone:1", ok=False)
    rs.set_capacity("http://gone:1", 4)


def test_failed_probe_keeps_a_new_replica_out() -> None:
    rs = ReplicaSet([ip(2)], RoutingPolicy(), clock=FakeClock(), rng=random.Random(0))
    rs.update([ip(2), ip(5)])
    assert rs.choose() == Probe(ip(5))
    rs.on_probe_result(ip(5), ok=False, error="refused")
    assert {rs.choose() for _ in range(10)} == {Pick(ip(2))}


def test_prefix_ring_follows_membership() -> None:
    rs = ReplicaSet([ip(2), ip(3)], RoutingPolicy(strategy="prefix"), clock=FakeClock())
    rs.update([ip(3)])
    for i in range(10):
        assert rs.choose(key=f"k{i}") == Pick(ip(3))


# ---- the client, over MockTransport ------------------------------------------------------------
async def test_client_resolves_probes_and_follows_changes(caplog: pytest.LogCaptureFixture) -> None:
    dead = {ip(5)}
    seen: list[Recorded] = []

    def handle(req: Recorded) -> Reply:
        seen.append(req)
        if req.replica in dead:
            return Reply.refuse_connection()
        if req.path == "/health":
            return Reply(200, b"")
        return Reply.generate("ok")

    names = Names(["127.0.0.2", "127.0.0.3", "127.0.0.5"])  # a mix of healthy and dead
    client = TGIClient(
        [SEED],
        routing=RoutingPolicy(strategy="round_robin", discovery_interval=3600.0),
        transport=MockTransport(handle, all_routes=True),
        resolver=names,
        rng=random.Random(2),
    )
    served: Counter[str] = Counter()
    for _ in range(30):
        _, meta = await client.post("/generate", {"inputs": "q"}, parse)
        served[meta.replica] += 1
    assert set(served) == {ip(2), ip(3)}
    assert client.urls == (ip(2), ip(3), ip(5))
    health = {r.replica for r in seen if r.path == "/health"}
    assert health >= {ip(2), ip(3), ip(5)}  # each new replica was checked
    assert all(r.replica != SEED for r in seen)
    # the answer changes: 127.0.0.2 goes, 127.0.0.4 comes (after its check)
    names.addresses = ["127.0.0.3", "127.0.0.4"]
    await client.discover_once()
    served.clear()
    for _ in range(30):
        _, meta = await client.post("/generate", {"inputs": "q"}, parse)
        served[meta.replica] += 1
    assert set(served) == {ip(3), ip(4)}
    assert ip(2) not in client.stats()
    # the name stops resolving: routing goes on with the last known replicas, logged once
    names.addresses = None
    with caplog.at_level(logging.WARNING, logger="tgispy.tgi._discovery"):
        await client.discover_once()
        await client.discover_once()
        _, meta = await client.post("/generate", {"inputs": "q"}, parse)
    assert meta.replica in (ip(3), ip(4))
    assert len([r for r in caplog.records if "did not resolve" in r.getMessage()]) == 1
    await client.stop_background()


# ---- real servers on 127.0.0.2 and 127.0.0.3 ---------------------------------------------------
def _free_port_on(*hosts: str) -> int:
    for _ in range(20):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = int(s.getsockname()[1])
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every address")


@pytest.fixture
async def loopback_pair() -> AsyncIterator[tuple[int, list[Counter[str]]]]:
    """The sim server on 127.0.0.2 and 127.0.0.3, same port; per-address request counters."""
    hosts = ("127.0.0.2", "127.0.0.3")
    try:
        port = _free_port_on(*hosts)
    except OSError:
        pytest.skip("127.0.0.2 / 127.0.0.3 cannot be bound here")
    runners: list[web.AppRunner] = []
    counters: list[Counter[str]] = []
    for host in hosts:
        app = create_app(ServerConfig(backend="sim", sim=SimConfig(texts=("Paris",))))
        counter: Counter[str] = Counter()

        @web.middleware
        async def count(request: web.Request, handler: object, counter: Counter[str] = counter):
            counter[request.path] += 1
            return await handler(request)  # type: ignore[operator]

        app.middlewares.append(count)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
        counters.append(counter)
    yield port, counters
    await close_sessions()
    for runner in runners:
        await runner.cleanup()


async def test_real_servers_behind_one_name(
    loopback_pair: tuple[int, list[Counter[str]]],
) -> None:
    port, (on_2, on_3) = loopback_pair
    names = Names(["127.0.0.2", "127.0.0.3"])
    client = TGIClient(
        [f"http://fleet.test:{port}"],
        routing=RoutingPolicy(strategy="round_robin", discovery_interval=3600.0, server_load="tgi"),
        resolver=names,
    )
    for _ in range(20):
        text, _ = await client.post(
            "/generate", {"inputs": "q", "parameters": {"max_new_tokens": 2}}, parse
        )
        assert text
    assert on_2["/health"] >= 1 and on_3["/health"] >= 1
    assert on_2["/generate"] > 0 and on_3["/generate"] > 0
    assert on_2["/generate"] + on_3["/generate"] == 20
    await client.poll_load_once()  # the sim server's /metrics reads as a load
    assert all(s["reported_load"] == 0.0 for s in client.stats().values())
    # one address vanishes: it gets no more traffic
    names.addresses = ["127.0.0.3"]
    await client.discover_once()
    before = on_2["/generate"]
    for _ in range(5):
        await client.post("/generate", {"inputs": "q", "parameters": {"max_new_tokens": 2}}, parse)
    assert on_2["/generate"] == before
    await client.stop_background()


async def test_only_dead_addresses_behind_a_name_fail_fast() -> None:
    names = Names(["127.0.0.7"])
    transport = MockTransport(lambda req: Reply.refuse_connection(), all_routes=True)
    client = TGIClient(
        [SEED],
        routing=RoutingPolicy(discovery_interval=3600.0),
        transport=transport,
        resolver=names,
    )
    with pytest.raises(NoHealthyReplicaError) as caught:
        await client.post("/generate", {"inputs": "q"}, parse)
    assert list(caught.value.errors) == [ip(7)]
    assert [r.path for r in transport.requests] == ["/health"]  # never sent the request
    await client.stop_background()
