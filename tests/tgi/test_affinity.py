"""Prefix affinity: routing keys, hash ring, bounded loads, ReplicaSet's "prefix" strategy."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter

import pytest

from tgispy.errors import ConfigError, ConnectError
from tgispy.tgi._affinity import (
    SEPARATOR,
    HashRing,
    KeyHomes,
    body_key,
    bounded_choice,
    current_route_key,
    load_bound,
    messages_key,
    prompt_key,
    route_key,
)
from tgispy.tgi._policy import RoutingPolicy
from tgispy.tgi._routing import Pick, Probe, ReplicaSet

from ._fakes import FakeClock

URLS = [f"http://10.0.0.{i}:8080" for i in range(1, 5)]


def program(instructions: str, demos: list[str], example: str) -> str:
    """A prompt shaped like DSPy 2.4's template: instructions, format, demos, the example."""
    fmt = "Follow the following format.\n\nQuestion: ${question}\nAnswer: ${answer}"
    return SEPARATOR.join([instructions, fmt, *demos, example])


def make(urls: list[str] = URLS, seed: int = 0, **policy: object) -> ReplicaSet:
    return ReplicaSet(
        urls,
        RoutingPolicy(strategy="prefix", **policy),  # type: ignore[arg-type]
        clock=FakeClock(),
        rng=random.Random(seed),
    )


def pick(rs: ReplicaSet, key: str | None, exclude: tuple[str, ...] = ()) -> str:
    choice = rs.choose(key=key, exclude=exclude)
    assert isinstance(choice, Pick), choice
    return choice.url


# ---- keys -------------------------------------------------------------------------------------
def test_prompt_key_is_the_template_before_the_current_example() -> None:
    demos = ["Question: 1+1?\nAnswer: 2", "Question: 2+3?\nAnswer: 5"]
    a = program("Answer math questions.", demos, "Question: 7*6?\nAnswer:")
    b = program("Answer math questions.", demos, "Question: 9-4?\nAnswer:")
    other_demos = program("Answer math questions.", demos[:1], "Question: 7*6?\nAnswer:")
    other_instructions = program("Answer briefly.", demos, "Question: 7*6?\nAnswer:")
    assert prompt_key(a) is not None
    assert prompt_key(a) == prompt_key(b)
    assert len({prompt_key(a), prompt_key(other_demos), prompt_key(other_instructions)}) == 3
    assert prompt_key("What is the capital of France?") is None
    assert prompt_key(SEPARATOR + "only an example") is None


def test_messages_key_few_shot_chat_and_conversations() -> None:
    system = {"role": "system", "content": "You are terse."}
    demo = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    q1 = [system, *demo, {"role": "user", "content": "3+3?"}]
    q2 = [system, *demo, {"role": "user", "content": "5+5?"}]
    assert messages_key(q1) is not None and messages_key(q1) == messages_key(q2)
    # a conversation keeps its key turn after turn (its opening does not change)
    turn1 = [system, {"role": "user", "content": "Plan a trip to Rome"}]
    turn2 = [
        *turn1,
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Day 2?"},
    ]
    turn3 = [
        *turn2,
        {"role": "assistant", "content": "Museums."},
        {"role": "user", "content": "3?"},
    ]
    assert messages_key(turn2) == messages_key(turn3)
    assert messages_key(turn2) != messages_key(q1)
    # a lone user turn holding a DSPy prompt is keyed by its template, with the system prompt
    p1 = program("Answer.", ["Question: a\nAnswer: b"], "Question: c\nAnswer:")
    p2 = program("Answer.", ["Question: a\nAnswer: b"], "Question: d\nAnswer:")
    lone1, lone2 = [{"role": "user", "content": p1}], [{"role": "user", "content": p2}]
    assert messages_key(lone1) is not None and messages_key(lone1) == messages_key(lone2)
    assert messages_key([system, *lone1]) != messages_key(lone1)
    # nothing shared can be named: no key
    assert messages_key([{"role": "user", "content": "hello"}]) is None
    assert messages_key([{"role": "assistant", "content": "hi"}]) is None
    assert messages_key([system, {"role": "user", "content": "x"}]) == messages_key(
        [system, {"role": "user", "content": "y"}]
    )


def test_body_key_reads_every_dialect() -> None:
    p = program("I.", ["Question: a\nAnswer: b"], "Question: c\nAnswer:")
    assert body_key({"inputs": p, "parameters": {}}) == prompt_key(p)  # TGI
    assert body_key({"prompt": p, "model": "m"}) == prompt_key(p)  # OpenAI / vLLM / llama.cpp
    msgs = [{"role": "user", "content": p}]
    assert body_key({"messages": msgs}) == messages_key(msgs)
    assert body_key({"prompt": ["a", "b"]}) is None
    assert body_key({"messages": "not a list"}) is None
    assert body_key({"messages": [{"role": "user", "content": {1, 2}}, {"role": "user"}]}) is None


async def test_route_key_context_is_scoped_to_task_and_block() -> None:
    assert current_route_key() is None
    with route_key("user-42"):
        assert current_route_key() == "user-42"
        with route_key(None):
            assert current_route_key() is None
        seen: list[str | None] = []

        async def other() -> None:
            with route_key("user-7"):
                await asyncio.sleep(0)
                seen.append(current_route_key())

        await asyncio.gather(other(), other())
        assert seen == ["user-7", "user-7"]
        assert current_route_key() == "user-42"
    assert current_route_key() is None
    with pytest.raises(TypeError, match="string"), route_key(42):  # type: ignore[arg-type]
        pass


# ---- ring and bound ---------------------------------------------------------------------------
def test_ring_walks_every_replica_once_and_moves_few_keys() -> None:
    ring = HashRing(URLS)
    keys = [f"prefix-{i}" for i in range(2000)]
    for key in keys[:50]:
        walk = list(ring.walk(key))
        assert sorted(walk) == sorted(URLS)
    homes = {k: next(ring.walk(k)) for k in keys}
    share = Counter(homes.values())
    assert min(share.values()) > 0.6 * len(keys) / len(URLS)  # roughly even
    smaller = HashRing(URLS[:-1])
    moved = [k for k in keys if next(smaller.walk(k)) != homes[k]]
    # only the removed replica's keys move, each to its next replica on the walk
    assert all(homes[k] == URLS[-1] for k in moved)
    assert len(moved) == share[URLS[-1]]
    assert all(next(smaller.walk(k)) == list(HashRing(URLS).walk(k))[1] for k in moved)
    assert list(HashRing([]).walk("k")) == []


def test_bounded_choice_spills_past_a_loaded_home() -> None:
    ring = HashRing(URLS)
    key = "hot"
    home, second, *_ = ring.walk(key)
    idle = dict.fromkeys(URLS, 0)
    assert bounded_choice(ring, key, idle, 1.25) == home
    assert load_bound({"a": 3, "b": 1}, 1.25) == math.ceil(1.25 * 5 / 2)
    loaded = {**idle, home: 2}  # bound = ceil(1.25 * 3 / 4) = 1: home is over it
    assert bounded_choice(ring, key, loaded, 1.25) == second
    assert bounded_choice(ring, key, idle, 1.25, usable={second}) == second
    busy_home = {**dict.fromkeys(URLS, 5), home: 6}  # bound = ceil(22 / 4) = 6
    assert bounded_choice(ring, key, busy_home, 1.0, usable={home}) is None


def test_key_homes_balance_stick_expire_and_rehome() -> None:
    ring = HashRing(URLS)
    homes = KeyHomes(ttl=10.0)
    placed = {f"k{i}": homes.home(f"k{i}", ring, ring.urls, now=0.0) for i in range(10)}
    assert sorted(homes.counts().values()) == [2, 2, 3, 3]  # plain hashing: often 4+ on one
    assert all(homes.home(k, ring, ring.urls, now=5.0) == u for k, u in placed.items())
    # a key whose home left is homed again among the others; the rest stay put
    gone = placed["k0"]
    left = ring.urls - {gone}
    assert homes.home("k0", ring, left, now=6.0) in left
    assert all(homes.home(k, ring, left, 6.0) == u for k, u in placed.items() if u != gone)
    # keys unused for longer than the ttl are forgotten and stop counting
    assert len(homes) == 10
    homes.home("fresh", ring, ring.urls, now=30.0)
    assert len(homes) == 1 and sum(homes.counts().values()) == 1
    assert homes.home("k1", ring, set(), now=30.0) is None
    small = KeyHomes(capacity=3)
    for i in range(5):
        small.home(f"k{i}", ring, ring.urls, now=0.0)
    assert len(small) <= 4


# ---- ReplicaSet with strategy="prefix" --------------------------------------------------------
def test_same_key_goes_home_and_different_keys_spread() -> None:
    rs = make()
    homes: dict[str, str] = {}
    for i in range(200):
        key = f"program-{i % 40}"
        url = pick(rs, key)
        assert homes.setdefault(key, url) == url  # sequential traffic: always home
        rs.on_start(url)
        rs.on_success(url, latency=0.1)
    assert len(set(homes.values())) == len(URLS)
    stats = rs.stats()
    assert [s["prefix_keys"] for s in stats.values()] == [10, 10, 10, 10]
    assert sum(s["prefix_hits"] for s in stats.values()) == 200
    assert sum(s["prefix_spills"] for s in stats.values()) == 0


def test_hot_key_is_bounded_and_spills() -> None:
    rs = make(prefix_load_factor=1.25)
    ring = HashRing(URLS)
    home = next(ring.walk("hot"))
    for n in range(1, 101):  # 100 concurrent requests of one prefix, none finishing
        url = pick(rs, "hot")
        rs.on_start(url)
        loads = [s["in_flight"] for s in rs.stats().values()]
        assert max(loads) <= math.ceil(1.25 * n / len(URLS))
    stats = rs.stats()
    assert stats[home]["in_flight"] == max(s["in_flight"] for s in stats.values())
    assert stats[home]["prefix_hits"] == stats[home]["in_flight"]
    assert sum(s["prefix_spills"] for s in stats.values()) == 100 - stats[home]["prefix_hits"]


def test_ejected_or_excluded_home_falls_back_then_returns() -> None:
    clock = FakeClock()
    rs = ReplicaSet(URLS, RoutingPolicy(strategy="prefix"), clock=clock, rng=random.Random(1))
    home, second, *_ = HashRing(URLS).walk("k")
    assert pick(rs, "k", exclude=(home,)) == second  # a retry goes to the key's next replica
    for _ in range(3):
        rs.on_start(home)
        rs.on_failure(home, ConnectError("refused"))
    assert rs.stats()[home]["ejected"]
    assert pick(rs, "k") == second
    clock.advance(5.0)
    probe = rs.choose(key="k")
    assert isinstance(probe, Probe) and probe.url == home
    rs.on_probe_result(home, ok=True)
    assert pick(rs, "k") == home


def test_no_key_is_plain_p2c() -> None:
    keyed, plain = make(seed=3), ReplicaSet(URLS, RoutingPolicy(), rng=random.Random(3))
    for rs in (keyed, plain):
        for _ in range(3):
            rs.on_start(URLS[0])  # one busy replica
    got_keyed = [pick(keyed, None) for _ in range(50)]
    got_plain = []
    for _ in range(50):
        choice = plain.choose()
        assert isinstance(choice, Pick)
        got_plain.append(choice.url)
    assert got_keyed == got_plain  # same draws, same choices
    assert URLS[0] not in got_keyed
    # other strategies ignore keys
    rr = ReplicaSet(URLS, RoutingPolicy(strategy="round_robin"))
    assert [rr.choose(key="k") for _ in range(4)] == [Pick(u) for u in URLS]


def test_reported_load_counts_in_the_bound() -> None:
    rs = make()
    home, second, *_ = HashRing(URLS).walk("k")
    rs.on_load(home, 12.0)  # other clients keep the home busy
    assert pick(rs, "k") == second
    rs.on_load(home, None)
    assert pick(rs, "k") == home
    rs.on_load("http://gone:1", 3.0)  # unknown replicas are ignored


def test_policy_validates_prefix_fields() -> None:
    assert RoutingPolicy(strategy="prefix").prefix_load_factor == 1.25
    with pytest.raises(ConfigError, match="prefix_load_factor must be >= 1"):
        RoutingPolicy(prefix_load_factor=0.9)
    with pytest.raises(ConfigError, match="'prefix'"):
        RoutingPolicy(strategy="affinity")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="server_load must be one of"):
        RoutingPolicy(server_load="triton")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="discovery_interval"):
        RoutingPolicy(discovery_interval=0)
