"""Suite-wide fixtures: keep every test's cache out of the user's home directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# Set before any tgispy cache is created: the shared LMCache reads it once.
os.environ["TGISPY_CACHEDIR"] = tempfile.mkdtemp(prefix="tgispy-test-cache-")


@pytest.fixture(autouse=True, scope="session")
def _isolated_default_cache() -> Iterator[None]:
    from tgispy.cache import LMCache

    LMCache.set_default(None)
    yield
    LMCache.set_default(None)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Every test starts on fresh, unconfigured settings (configure() writes a process default)."""
    from tgispy.testing import isolated_settings

    with isolated_settings():
        yield
