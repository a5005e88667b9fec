"""One connection per disk cache whatever the threads; a key filter spares misses an SQLite read."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tgispy.cache import DiskCache, LMCache, MemoryCache, cache_key


def key_for(prompt: str) -> str:
    return cache_key({"model": "m", "endpoint": "/generate", "body": {"inputs": prompt}})


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until_loaded(disk: DiskCache) -> None:
    # The key filter loads on the worker thread after the directory opens; wait for it (bounded).
    deadline = time.monotonic() + 20
    while not disk._keys.loaded:
        assert time.monotonic() < deadline, "the key filter never finished loading"
        time.sleep(0.01)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
@pytest.mark.parametrize("write_behind", [False, True], ids=["sync", "write-behind"])
def test_40_threads_share_one_connection(tmp_path: Path, write_behind: bool) -> None:
    threads, per_thread = 40, 10
    before = open_fds()
    disk = DiskCache(tmp_path / "c")
    cache = LMCache(memory=MemoryCache(maxsize=16), disk=disk, write_behind=write_behind)
    ready = threading.Barrier(threads + 1)
    release = threading.Event()
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(per_thread):
                cache.set(key_for(f"{t}:{i}"), {"t": t, "i": i})
            cache.flush()
            for i in range(per_thread):  # memory holds 16 entries: most of these read the disk
                assert cache.get(key_for(f"{t}:{i}")) == {"t": t, "i": i}
                assert disk.get(key_for(f"{t}:{i}")) == {"t": t, "i": i}
                assert cache.get(key_for(f"absent {t}:{i}")) is None
        except BaseException as exc:
            errors.append(exc)
        finally:
            ready.wait(timeout=60)
            release.wait(timeout=60)  # stay alive while the descriptors are counted

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    try:
        ready.wait(timeout=60)
        during = open_fds()
    finally:
        release.set()
        for th in pool:
            th.join()
    assert errors == []
    assert len(disk) == threads * per_thread
    # One connection: the database, its -wal and -shm (one per thread was 3 x 40 = 120 more).
    assert during - before <= 6, (before, during)
    disk.close()


def sql(directory: Path, statement: str, *args: object) -> None:
    """Change the database behind tgispy's back, as another program could."""
    con = sqlite3.connect(directory / "tgispy-cache.sqlite3")
    try:
        with con:
            con.execute(statement, args)
    finally:
        con.close()


def test_a_miss_for_a_key_not_on_disk_reads_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "c"
    present = key_for("present")
    with DiskCache(directory) as disk:
        disk.set(present, {"text": "on disk"})
    disk = DiskCache(directory)
    try:
        wait_until_loaded(disk)
        cache = LMCache(memory=MemoryCache(), disk=disk, write_behind=True)
        written = key_for("written here")
        cache.set(written, {"text": "mine"})
        cache.flush()
        assert disk.get(written) == {"text": "mine"}  # the filter knows this process's writes
        # From now on every SQLite read fails, and says so in a DEBUG line naming its key.
        sql(directory, "ALTER TABLE entries RENAME TO moved")
        caplog.set_level(logging.DEBUG, logger="tgispy.cache._disk")
        for i in range(50):
            assert cache.get(key_for(f"new {i}")) is None
            assert disk.get(key_for(f"other {i}")) is None
        assert cache.get(present) is None  # on disk as far as this process knows: read, failed
    finally:
        disk.close()
    reads = [r.getMessage() for r in caplog.records if "treated as a miss" in r.getMessage()]
    assert len(reads) == 1 and present in reads[0]  # 100 misses never reached SQLite


def test_reads_before_the_filter_loads_still_find_entries(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    keys = [key_for(f"p{i}") for i in range(5_000)]  # more than one step of the load
    with DiskCache(directory) as disk:
        cache = LMCache(memory=MemoryCache(), disk=disk, write_behind=True)
        for i, key in enumerate(keys):
            cache.set(key, {"i": i})
    with DiskCache(directory) as disk:
        assert disk.get(keys[-1]) == {"i": 4_999}  # possibly before the load ended
        wait_until_loaded(disk)
        assert [disk.get(k) for k in keys[::250]] == [{"i": i} for i in range(0, 5_000, 250)]


def test_clear_empties_the_filter_and_later_writes_are_found(tmp_path: Path) -> None:
    with DiskCache(tmp_path / "c") as disk:
        disk.set(key_for("a"), {"v": 1})
        wait_until_loaded(disk)
        disk.clear()
        assert disk.get(key_for("a")) is None
        disk.set(key_for("a"), {"v": 2})
        assert disk.get(key_for("a")) == {"v": 2}


def test_rows_another_program_wrote_do_not_break_the_filter(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    with DiskCache(directory):
        pass
    sql(directory, "INSERT INTO entries (key, value) VALUES (?, ?)", b"\x80binary", "1")
    sql(directory, "INSERT INTO entries (key, value) VALUES (?, ?)", 7, "2")
    sql(directory, "INSERT INTO entries (key, value) VALUES (?, ?)", key_for("fine"), '{"ok":1}')
    with DiskCache(directory) as disk:
        wait_until_loaded(disk)
        assert disk.get(key_for("fine")) == {"ok": 1}
        assert disk.get(key_for("missing")) is None
        assert len(disk) == 3


def test_writes_land_when_the_worker_has_gone_idle_and_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tgispy.cache import _worker

    monkeypatch.setattr(_worker, "IDLE_EXIT_S", 0.05)
    with DiskCache(tmp_path / "c") as disk:
        cache = LMCache(memory=MemoryCache(), disk=disk, write_behind=True)
        for round_ in range(3):
            cache.set(key_for(f"r{round_}"), {"r": round_})
            cache.flush()
            time.sleep(0.2)  # the worker ends (closing its connection) and the next use restarts it
        assert [disk.get(key_for(f"r{r}")) for r in range(3)] == [{"r": r} for r in range(3)]
        assert len(disk) == 3


def _child_writes(directory: str, key: str, out: Any) -> None:
    disk = DiskCache(directory)
    cache = LMCache(memory=MemoryCache(), disk=disk, write_behind=True)
    cache.set(key, {"from": "child"})
    cache.flush()
    out.put(disk.get(key))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_gets_its_own_worker(tmp_path: Path) -> None:
    import multiprocessing

    directory = tmp_path / "c"
    disk = DiskCache(directory)
    cache = LMCache(memory=MemoryCache(), disk=disk, write_behind=True)
    cache.set(key_for("parent"), {"from": "parent"})
    cache.flush()  # the parent's worker thread is running when the child is forked
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()

    def child() -> None:
        # the inherited DiskCache works in the child: a new worker, a new connection
        disk.set(key_for("child via parent's object"), {"from": "child"})
        out.put(disk.get(key_for("parent")))
        _child_writes(str(directory), key_for("child"), out)

    proc = ctx.Process(target=child)
    proc.start()
    try:
        assert out.get(timeout=30) == {"from": "parent"}
        assert out.get(timeout=30) == {"from": "child"}
    finally:
        proc.join(timeout=30)
    assert proc.exitcode == 0
    with DiskCache(directory) as reopened:
        assert reopened.get(key_for("child via parent's object")) == {"from": "child"}
        assert reopened.get(key_for("child")) == {"from": "child"}
    disk.close()


def test_the_key_filter_stays_small_and_exact_enough(tmp_path: Path) -> None:
    import tracemalloc

    directory = tmp_path / "c"
    keys = [key_for(f"p{i}") for i in range(40_000)]
    with DiskCache(directory):
        pass
    con = sqlite3.connect(directory / "tgispy-cache.sqlite3")
    try:
        with con:
            con.executemany(
                "INSERT INTO entries (key, value) VALUES (?, '1')", ((k,) for k in keys)
            )
    finally:
        con.close()
    tracemalloc.start()
    try:
        disk = DiskCache(directory)
        wait_until_loaded(disk)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        # 40,000 keys in a set of hashes held ~2.6 MB; the Bloom filters hold 168 KiB.
        assert held < 1_000_000, held
        assert all(disk._keys.may_contain(k) for k in keys)  # never a false negative
        absent = sum(disk._keys.may_contain(key_for(f"absent {i}")) for i in range(20_000))
        assert absent < 20_000 * 0.02  # false positives (a read that misses) stay rare
    finally:
        disk.close()
