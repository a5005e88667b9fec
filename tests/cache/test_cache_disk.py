"""The disk tier: persistence, private permissions, the environment; a broken cache is a miss."""

from __future__ import annotations

import logging
import os
import pickle
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tgispy.cache import DiskCache, LMCache, MemoryCache, cache_key, default_cache_dir
from tgispy.errors import ConfigError

KEY = cache_key({"model": "m", "endpoint": "/generate", "body": {"inputs": "Hi"}})
VALUE = {"prompt": "Hi", "choices": [{"text": " there"}], "usage": {"completion_tokens": 1}}
DISK_LOGGER = "tgispy.cache._disk"
DB = "tgispy-cache.sqlite3"


def write_raw(directory: Path, key: str, value: object) -> None:
    """Write a row as another program could, bypassing tgispy."""
    con = sqlite3.connect(directory / DB)
    try:
        with con:
            con.execute("INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", (key, value))
    finally:
        con.close()


def modes(directory: Path) -> dict[str, int]:
    """Permission bits of the directory and of everything below it, by relative path."""
    out = {".": stat.S_IMODE(directory.stat().st_mode)}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root, name)
            out[str(path.relative_to(directory))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_round_trip_and_persistence_across_instances(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    with DiskCache(directory) as first:
        assert first.available
        assert first.get(KEY) is None
        first.set(KEY, VALUE)
        assert first.get(KEY) == VALUE
    with DiskCache(directory) as second:
        assert second.get(KEY) == VALUE
        assert len(second) == 1
        second.clear()
        assert second.get(KEY) is None
        assert len(second) == 0


def test_new_directory_is_0700_and_every_file_0600_whatever_the_umask(
    tmp_path: Path, odd_umask: int
) -> None:
    # Under umask 0o277 a parent we create would be 0o500 (unusable by non-root), so the deep
    # path, which also checks that parents are made, runs under the permissive umask only.
    directory = tmp_path / "deep" / "cache" if odd_umask == 0 else tmp_path / "cache"
    disk = DiskCache(directory)
    try:
        disk.set(KEY, VALUE)
        large = {"text": "x" * 3_000_000}  # large values stay inline too
        disk.set("large", large)
        assert disk.get("large") == large
        found = modes(directory)  # walked while the connection (and so -wal/-shm) is open
    finally:
        disk.close()
    # values live inline in SQLite: no value files or sub-directories were written
    assert found == {".": 0o700, DB: 0o600, f"{DB}-wal": 0o600, f"{DB}-shm": 0o600}


def test_existing_loose_database_files_are_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    with DiskCache(directory) as disk:
        disk.set(KEY, VALUE)
    db = directory / DB
    os.chmod(db, 0o644)
    with DiskCache(directory) as disk:
        assert disk.get(KEY) == VALUE
        assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_cachedir_env_is_respected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "from-env"
    monkeypatch.setenv("TGISPY_CACHEDIR", str(target))
    assert default_cache_dir() == target
    with DiskCache() as disk:
        assert disk.directory == target
        disk.set(KEY, VALUE)
    assert (target / DB).is_file()
    with DiskCache(target) as again:
        assert again.get(KEY) == VALUE


def test_cachedir_env_expands_user(no_home_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGISPY_CACHEDIR", "~/mycache")
    assert default_cache_dir() == no_home_cache / "mycache"


@pytest.mark.parametrize("value", ["", "off", "OFF", "0", "false", "no", "None", " off "])
def test_cachedir_env_turns_the_disk_off(
    value: str, monkeypatch: pytest.MonkeyPatch, no_home_cache: Path
) -> None:
    monkeypatch.setenv("TGISPY_CACHEDIR", value)
    assert default_cache_dir() is None
    disk = DiskCache()
    assert not disk.available
    assert disk.directory is None
    disk.set(KEY, VALUE)
    assert disk.get(KEY) is None
    assert list(no_home_cache.iterdir()) == []


def test_default_directory_is_home_cache_or_xdg(
    no_home_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert default_cache_dir() == no_home_cache / ".cache" / "tgispy"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tgispy"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_cache_dir() == no_home_cache / ".cache" / "tgispy"


def test_invalid_json_entry_is_a_logged_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    with DiskCache(directory) as disk:
        disk.set(KEY, VALUE)
    write_raw(directory, KEY, '{"prompt": "truncated')
    caplog.set_level(logging.DEBUG, logger=DISK_LOGGER)
    with DiskCache(directory) as disk:
        assert disk.get(KEY) is None
        lm = LMCache(memory=MemoryCache(), disk=disk)
        assert lm.get(KEY) is None
        assert lm.memory is not None and KEY not in lm.memory  # a bad entry is never promoted
        lm.set(KEY, VALUE)  # and is simply replaced by the next good result
        assert disk.get(KEY) == VALUE
    misses = [r for r in caplog.records if "not valid JSON" in r.getMessage()]
    assert misses and all(r.levelno == logging.DEBUG for r in misses)
    assert all('"prompt"' not in r.getMessage() for r in caplog.records)  # values never logged


def test_pickled_or_binary_entry_is_never_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.mkdir, (str(marker),))

    with DiskCache(directory):
        pass
    write_raw(directory, KEY, pickle.dumps(Exploit()))  # a BLOB, as a pickling cache writes
    caplog.set_level(logging.DEBUG, logger=DISK_LOGGER)
    with DiskCache(directory) as disk:
        assert disk.get(KEY) is None
    assert not marker.exists()
    assert any("not JSON text" in r.getMessage() for r in caplog.records)


def test_broken_database_reads_miss_and_writes_warn_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    caplog.set_level(logging.DEBUG, logger=DISK_LOGGER)
    with DiskCache(directory) as disk:
        disk.set(KEY, VALUE)
        con = sqlite3.connect(directory / DB)
        try:
            con.execute("DROP TABLE entries")
            con.commit()
        finally:
            con.close()
        assert disk.get(KEY) is None
        disk.set(KEY, VALUE)
        disk.set("other", VALUE)
        lm = LMCache(memory=MemoryCache(), disk=disk)
        lm.set(KEY, VALUE)  # the call path keeps working on the memory tier
        assert lm.get(KEY) == VALUE
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(directory) in warnings[0].getMessage()
    assert "TGISPY_CACHEDIR" in warnings[0].getMessage()
    assert any("treated as a miss" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("breakage", ["parent-is-a-file", "garbage-database"])
def test_unopenable_directory_degrades_with_one_warning(
    breakage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if breakage == "parent-is-a-file":
        (tmp_path / "file").write_text("not a directory")
        directory = tmp_path / "file" / "cache"
    else:
        directory = tmp_path / "cache"
        directory.mkdir(mode=0o700)
        (directory / DB).write_bytes(b"this is not an SQLite database" * 100)
    caplog.set_level(logging.DEBUG, logger=DISK_LOGGER)
    disk = DiskCache(directory)
    assert not disk.available
    disk.set(KEY, VALUE)
    assert disk.get(KEY) is None
    assert len(disk) == 0
    disk.clear()
    disk.close()
    lm = LMCache(memory=MemoryCache(), disk=disk)
    lm.set(KEY, VALUE)
    assert lm.get(KEY) == VALUE
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(directory) in message
    assert "TGISPY_CACHEDIR" in message


def test_errors_and_non_json_are_refused_and_not_stored(tmp_path: Path) -> None:
    with DiskCache(tmp_path / "cache") as disk:
        with pytest.raises(ConfigError, match="errors are never cached"):
            disk.set(KEY, TimeoutError("upstream timed out"))
        with pytest.raises(ConfigError, match="JSON-serializable"):
            disk.set(KEY, {"when": object()})
        assert disk.get(KEY) is None
        assert len(disk) == 0


def test_size_limit_drops_the_oldest_entries(tmp_path: Path) -> None:
    with DiskCache(tmp_path / "cache", size_limit=2**20) as disk:
        for i in range(40):
            disk.set(f"k{i}", {"i": i, "pad": "x" * 100_000})
        assert disk.get("k39") == {"i": 39, "pad": "x" * 100_000}
        assert disk.get("k0") is None
        assert len(disk) < 40
    assert (tmp_path / "cache" / DB).stat().st_size < 4 * 2**20


@pytest.mark.parametrize("size_limit", [0, -5, 1.0, True])
def test_bad_size_limit_is_refused(size_limit: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="size_limit"):
        DiskCache(tmp_path / "cache", size_limit=size_limit)


def test_32_threads_write_and_read_one_directory(tmp_path: Path) -> None:
    threads, per_thread = 32, 20
    disk = DiskCache(tmp_path / "cache")
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                disk.set(f"{t}:{i}", {"t": t, "i": i})
                assert disk.get(f"{t}:{i}") == {"t": t, "i": i}
        except BaseException as exc:
            errors.append(exc)
        finally:
            disk.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    try:
        assert errors == []
        assert len(disk) == threads * per_thread
        for t in range(threads):
            for i in range(per_thread):
                assert disk.get(f"{t}:{i}") == {"t": t, "i": i}
    finally:
        disk.close()


def test_importing_the_cache_does_not_import_sqlite3() -> None:
    code = "import sys, tgispy.cache; print('sqlite3' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
