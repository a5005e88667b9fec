from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tgispy.cache import LMCache


@pytest.fixture(params=[0o000, 0o277], ids=["umask-000", "umask-277"])
def odd_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run under a permissive and an owner-hostile umask: modes must be set, not inherited."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.fixture
def fresh_default() -> Iterator[None]:
    """Reset the process-wide LMCache before and after the test."""
    LMCache.set_default(None)
    try:
        yield
    finally:
        LMCache.set_default(None)


@pytest.fixture
def no_home_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME at a temporary directory so no test can write into the real ~/.cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("TGISPY_CACHEDIR", raising=False)
    return home
