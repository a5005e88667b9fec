"""LMCache: memory in front of disk, promotion, the shared default, and concurrent use."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import tgispy.cache
from tgispy.cache import DiskCache, LMCache, MemoryCache, cache_key
from tgispy.errors import ConfigError


def key_for(prompt: str) -> str:
    return cache_key({"model": "m", "endpoint": "/generate", "body": {"inputs": prompt}})


K1, K2 = key_for("one"), key_for("two")
V1 = {"prompt": "one", "choices": [{"text": "1"}]}
V2 = {"prompt": "two", "choices": [{"text": "2"}]}


def test_public_names() -> None:
    assert sorted(tgispy.cache.__all__) == [
        "CACHEDIR_ENV",
        "DiskCache",
        "LMCache",
        "MemoryCache",
        "cache_key",
        "canonical_json",
        "default_cache_dir",
    ]
    for name in tgispy.cache.__all__:
        assert getattr(tgispy.cache, name) is not None


def test_set_writes_both_tiers(tmp_path: Path) -> None:
    memory = MemoryCache()
    with DiskCache(tmp_path / "c") as disk:
        cache = LMCache(memory=memory, disk=disk)
        cache.set(K1, V1)
        assert memory.get(K1) == V1
        assert disk.get(K1) == V1
        assert cache.get(K1) == V1


def test_disk_hit_is_promoted_to_memory(tmp_path: Path) -> None:
    memory = MemoryCache()
    with DiskCache(tmp_path / "c") as disk:
        disk.set(K1, V1)
        cache = LMCache(memory=memory, disk=disk)
        assert K1 not in memory
        assert cache.get(K1) == V1
        assert K1 in memory
        disk.clear()  # the next hit is served from memory
        assert cache.get(K1) == V1
        assert cache.get(K2) is None
        assert K2 not in memory


def test_memory_is_checked_first(tmp_path: Path) -> None:
    memory = MemoryCache()
    with DiskCache(tmp_path / "c") as disk:
        memory.set(K1, V1)
        disk.set(K1, V2)
        assert LMCache(memory=memory, disk=disk).get(K1) == V1


def test_results_survive_a_restart_through_the_disk(tmp_path: Path) -> None:
    with DiskCache(tmp_path / "c") as disk:
        LMCache(memory=MemoryCache(), disk=disk).set(K1, V1)
    with DiskCache(tmp_path / "c") as disk:
        assert LMCache(memory=MemoryCache(), disk=disk).get(K1) == V1


def test_single_tier_and_no_tier() -> None:
    memory_only = LMCache(memory=MemoryCache())
    memory_only.set(K1, V1)
    assert memory_only.get(K1) == V1
    assert memory_only.disk is None
    nothing = LMCache()
    nothing.set(K1, V1)
    assert nothing.get(K1) is None


def test_disk_only(tmp_path: Path) -> None:
    with DiskCache(tmp_path / "c") as disk:
        cache = LMCache(disk=disk)
        cache.set(K1, V1)
        assert cache.get(K1) == V1
        assert cache.memory is None


def test_errors_are_never_cached_in_any_tier(tmp_path: Path) -> None:
    memory = MemoryCache()
    with DiskCache(tmp_path / "c") as disk:
        cache = LMCache(memory=memory, disk=disk)
        for bad in (RuntimeError("generation failed"), ConfigError("bad"), None):
            with pytest.raises(ConfigError):
                cache.set(K1, bad)
        assert len(memory) == 0
        assert len(disk) == 0
        assert cache.get(K1) is None


def test_clear_empties_both_tiers(tmp_path: Path) -> None:
    with DiskCache(tmp_path / "c") as disk:
        cache = LMCache(memory=MemoryCache(), disk=disk)
        cache.set(K1, V1)
        cache.clear()
        assert cache.get(K1) is None
        assert len(disk) == 0


def test_default_is_shared_and_uses_the_env_directory(
    fresh_default: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGISPY_CACHEDIR", str(tmp_path / "env"))
    cache = LMCache.default()
    try:
        assert LMCache.default() is cache
        assert cache.memory is not None
        assert cache.disk is not None and cache.disk.available
        assert cache.disk.directory == tmp_path / "env"
        cache.set(K1, V1)
        assert (tmp_path / "env" / "tgispy-cache.sqlite3").is_file()
    finally:
        cache.close()


def test_default_shared_across_threads(
    fresh_default: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGISPY_CACHEDIR", "off")
    seen: list[LMCache] = []
    barrier = threading.Barrier(16)

    def grab() -> None:
        barrier.wait()
        seen.append(LMCache.default())

    pool = [threading.Thread(target=grab) for _ in range(16)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert len(seen) == 16
    assert all(c is seen[0] for c in seen)


def test_default_is_memory_only_when_env_says_off(
    fresh_default: None, monkeypatch: pytest.MonkeyPatch, no_home_cache: Path
) -> None:
    monkeypatch.setenv("TGISPY_CACHEDIR", "off")
    cache = LMCache.default()
    assert cache.disk is None
    cache.set(K1, V1)
    assert cache.get(K1) == V1
    assert list(no_home_cache.iterdir()) == []


def test_default_uses_home_cache_when_env_unset(fresh_default: None, no_home_cache: Path) -> None:
    cache = LMCache.default()
    try:
        assert cache.disk is not None
        assert cache.disk.directory == no_home_cache / ".cache" / "tgispy"
    finally:
        cache.close()


def test_set_default_replaces_and_resets(
    fresh_default: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGISPY_CACHEDIR", "off")
    mine = LMCache(memory=MemoryCache(maxsize=5))
    LMCache.set_default(mine)
    assert LMCache.default() is mine
    LMCache.set_default(None)
    rebuilt = LMCache.default()
    assert rebuilt is not mine
    assert rebuilt.memory is not None and rebuilt.memory.maxsize == 10_000


def test_32_threads_through_both_tiers(tmp_path: Path) -> None:
    threads, per_thread = 32, 15
    disk = DiskCache(tmp_path / "c")
    cache = LMCache(memory=MemoryCache(maxsize=64), disk=disk)  # small: forces disk reads
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                cache.set(key_for(f"{t}:{i}"), {"t": t, "i": i})
            barrier.wait()
            # read every other thread's results: from memory or, once evicted, from disk
            for other in range(threads):
                for i in range(per_thread):
                    assert cache.get(key_for(f"{other}:{i}")) == {"t": other, "i": i}
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            cache.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    try:
        assert errors == []
        assert len(disk) == threads * per_thread
    finally:
        cache.close()


def test_write_behind_serves_from_memory_and_lands_on_disk(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path)
    cache = LMCache(memory=MemoryCache(), disk=disk, write_behind=True)
    keys = [cache_key({"model": "m", "body": {"inputs": f"p{i}"}}) for i in range(200)]
    for i, key in enumerate(keys):
        cache.set(key, {"i": i})
        assert cache.get(key) == {"i": i}  # answered by memory before the disk write lands
    cache.flush()
    reopened = LMCache(disk=DiskCache(tmp_path))
    assert [reopened.get(k) for k in keys] == [{"i": i} for i in range(200)]
    with pytest.raises(ConfigError):
        cache.set(keys[0], ValueError("boom"))
    cache.close()
    reopened.close()


def test_default_cache_writes_behind(
    fresh_default: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGISPY_CACHEDIR", str(tmp_path / "c"))
    cache = LMCache.default()
    key = cache_key({"model": "m", "body": {"inputs": "x"}})
    cache.set(key, {"ok": True})
    cache.flush()
    assert LMCache(disk=DiskCache(tmp_path / "c")).get(key) == {"ok": True}
