"""The memory tier: LRU order, copies on read, refusals, and 32 threads at once."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from tgispy.cache import MemoryCache
from tgispy.errors import ConfigError


def test_get_set_and_miss() -> None:
    mem = MemoryCache()
    assert mem.get("k") is None
    mem.set("k", {"text": "hi", "n": [1, 2]})
    assert mem.get("k") == {"text": "hi", "n": [1, 2]}
    assert len(mem) == 1
    assert "k" in mem


def test_lru_evicts_the_least_recently_used_entry() -> None:
    mem = MemoryCache(maxsize=3)
    for key in "abc":
        mem.set(key, {"v": key})
    assert mem.get("a") == {"v": "a"}  # a is now the most recently used
    mem.set("d", {"v": "d"})  # evicts b, the least recently used
    assert mem.get("b") is None
    assert [k for k in "abcd" if k in mem] == ["a", "c", "d"]
    mem.set("c", {"v": "c2"})  # overwriting refreshes c
    mem.set("e", {"v": "e"})  # evicts a (a was read before c was rewritten)
    assert [k for k in "abcde" if k in mem] == ["c", "d", "e"]
    assert mem.get("c") == {"v": "c2"}
    assert len(mem) == 3


def test_reads_are_copies() -> None:
    mem = MemoryCache()
    value = {"choices": [{"text": "a"}]}
    mem.set("k", value)
    value["choices"][0]["text"] = "changed after set"
    got = mem.get("k")
    assert got == {"choices": [{"text": "a"}]}
    got["choices"].append({"text": "changed after get"})
    assert mem.get("k") == {"choices": [{"text": "a"}]}


def test_tuples_read_back_as_lists_like_on_disk() -> None:
    mem = MemoryCache()
    mem.set("k", {"stop": ("\n",)})
    assert mem.get("k") == {"stop": ["\n"]}


def test_clear() -> None:
    mem = MemoryCache()
    mem.set("a", 1)
    mem.set("b", 2)
    mem.clear()
    assert len(mem) == 0
    assert mem.get("a") is None


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True, "10"])
def test_bad_maxsize_is_refused(maxsize: Any) -> None:
    with pytest.raises(ConfigError, match="maxsize must be an int >= 1"):
        MemoryCache(maxsize=maxsize)


@pytest.mark.parametrize("value", [ValueError("x"), None, {"bad": object()}])
def test_errors_none_and_non_json_are_refused_and_not_stored(value: Any) -> None:
    mem = MemoryCache()
    with pytest.raises(ConfigError):
        mem.set("k", value)
    assert len(mem) == 0


def test_32_threads_share_one_cache_consistently() -> None:
    threads, rounds, maxsize = 32, 300, 1000
    mem = MemoryCache(maxsize=maxsize)
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(rounds):
                mem.set(f"{t}:{i}", {"t": t, "i": i})
                mem.set("shared", {"t": t})
                got = mem.get(f"{t}:{i}")
                # just written; it can only be gone if >maxsize newer entries came in between
                assert got is None or got == {"t": t, "i": i}
                shared = mem.get("shared")
                assert shared is None or shared["t"] in range(threads)
                old = mem.get(f"{(t + 1) % threads}:{i // 2}")
                assert old is None or old == {"t": (t + 1) % threads, "i": i // 2}
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        for th in pool:
            th.start()
        for th in pool:
            th.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(mem) == maxsize
    # the internal order is intact: every kept entry reads back with the value written for it
    kept = [f"{t}:{i}" for t in range(threads) for i in range(rounds) if f"{t}:{i}" in mem]
    assert len(kept) == maxsize - ("shared" in mem)
    for key in kept:
        t, i = map(int, key.split(":"))
        assert mem.get(key) == {"t": t, "i": i}
