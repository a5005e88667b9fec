"""Prefix affinity end to end: TGIClient and HFClientTGI over MockTransport replicas that each
keep a small prefix cache (like llama.cpp's slots), so where a request lands decides a hit."""

from __future__ import annotations

import random
from collections import Counter, OrderedDict

import pytest

import tgispy as dspy
from tgispy.errors import ConfigError
from tgispy.testing import MockTransport, Recorded, Reply
from tgispy.tgi._affinity import SEPARATOR, route_key
from tgispy.tgi._client import TGIClient
from tgispy.tgi._policy import RoutingPolicy
from tgispy.tgi._response import parse_generate_response
from tgispy.tgi._transport import HTTPResponse

URLS = [f"http://127.0.0.{i}:8080" for i in (2, 3, 4)]


class SlotCaches:
    """Each replica remembers the prefixes of its last ``slots`` prompts (LRU), as llama.cpp's
    slots do; a request whose prefix is remembered is a hit."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.caches: dict[str, OrderedDict[str, None]] = {u: OrderedDict() for u in URLS}
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: Recorded) -> Reply:
        self.bodies.append(request.json)
        text = request.json.get("inputs") or request.json["messages"][-1]["content"]
        prefix = text.rsplit(SEPARATOR, 1)[0]
        cache = self.caches[request.replica]
        if prefix in cache:
            self.hits[request.replica] += 1
            cache.move_to_end(prefix)
        else:
            self.misses[request.replica] += 1
            cache[prefix] = None
            if len(cache) > self.slots:
                cache.popitem(last=False)
        if request.path == "/generate_stream":
            return Reply.stream(["o", "k"])
        if request.json.get("stream"):
            return Reply.chat_stream(["o", "k"])
        if "messages" in request.json:
            return Reply.chat("ok")
        return Reply.generate("ok")

    @property
    def hit_rate(self) -> float:
        hits = sum(self.hits.values())
        return hits / (hits + sum(self.misses.values()))


def prompts(programs: int, examples: int) -> list[str]:
    """``programs`` few-shot programs (distinct demos), their examples interleaved."""
    out = []
    for e in range(examples):
        for p in range(programs):
            demos = [f"Question: demo {p}.{d}?\nAnswer: {d}" for d in range(3)]
            out.append(SEPARATOR.join([f"Program {p}.", *demos, f"Question: {e}?\nAnswer:"]))
    return out


def parse(resp: HTTPResponse, replica: str) -> str:
    return parse_generate_response(resp.body).sequences[0].text


async def run_workload(strategy: str, slots: int, seed: int) -> SlotCaches:
    caches = SlotCaches(slots)
    client = TGIClient(
        URLS,
        routing=RoutingPolicy(strategy=strategy),  # type: ignore[arg-type]
        rng=random.Random(seed),
        transport=MockTransport(caches),
    )
    for prompt in prompts(programs=7, examples=10):
        await client.post("/generate", {"inputs": prompt}, parse)
    return caches


@pytest.mark.parametrize("seed", [0, 1])
async def test_prefix_affinity_keeps_each_program_on_one_replica(seed: int) -> None:
    # 7 programs, 3 replicas of 3 slots: the programs fit only if each stays on one replica
    # (and KeyHomes splits them 3/2/2, where plain hashing often puts 4 on one replica)
    affine = await run_workload("prefix", slots=3, seed=seed)
    spread = await run_workload("p2c", slots=3, seed=seed)
    rr = await run_workload("round_robin", slots=3, seed=seed)
    # with affinity every program misses once, on its first example
    assert affine.hit_rate == pytest.approx(0.9), affine.hit_rate
    assert sorted(affine.misses.values()) == [2, 2, 3]
    assert spread.hit_rate < 0.5 and rr.hit_rate < 0.5, (spread.hit_rate, rr.hit_rate)


async def test_hfclient_routes_by_template_route_key_and_context() -> None:
    caches = SlotCaches(slots=8)
    lm = dspy.HFClientTGI(
        "m",
        None,
        URLS,
        cache=False,
        routing=RoutingPolicy(strategy="prefix"),
        transport=MockTransport(caches),
    )
    for prompt in prompts(programs=1, examples=6):
        lm(prompt)
    (home,) = {h["replica"] for h in lm.history}
    assert lm.stats()[home]["prefix_hits"] == 6
    # an explicit key pins prompts that share nothing (a multi-turn session)
    lm.history.clear()
    for turn in range(6):
        lm(f"turn {turn} of a chat", route_key="user-42")
    assert len({h["replica"] for h in lm.history}) == 1
    assert all("route_key" not in b and "route_key" not in b["parameters"] for b in caches.bodies)
    lm.history.clear()
    with route_key("user-7"):
        for turn in range(4):
            lm(f"another turn {turn}")
            lm.chat([{"role": "user", "content": f"chat turn {turn}"}])
        pieces = list(lm.stream("a streamed turn"))
    assert pieces
    assert len({h["replica"] for h in lm.history}) == 1
    with pytest.raises(ConfigError, match="route_key must be a string"):
        lm("x", route_key=42)


async def test_hfclient_chat_mode_and_per_call_key_on_streams() -> None:
    caches = SlotCaches(slots=8)
    lm = dspy.HFClientTGI(
        "m",
        None,
        URLS,
        cache=False,
        mode="chat",
        routing=RoutingPolicy(strategy="prefix"),
        transport=MockTransport(caches),
    )
    for prompt in prompts(programs=1, examples=5):
        lm(prompt)
    assert len({h["replica"] for h in lm.history}) == 1
    lm.history.clear()
    for turn in range(3):
        assert "".join(lm.chat_stream([{"role": "user", "content": f"t{turn}"}], route_key="s"))
    assert len({h["replica"] for h in lm.history}) == 1
    assert all("route_key" not in b for b in caches.bodies)
