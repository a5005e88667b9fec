"""Suite-wide fixtures: keep every test's cache out of the user's home directory; one real model.

``model_server`` is the one real-model ``tgispy serve`` (SmolLM2-135M on llama.cpp) of the whole
session: it starts when the first test asks for it and stops at the end, so the ``model`` tests of
every package share one start instead of one each. ``llama_server`` (tests/_llama_server.py) is
likewise the one llama.cpp HTTP server of the session, for the engine tests of every package.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from _llama_server import llama_server  # noqa: F401  (the session fixture, for every package)

if TYPE_CHECKING:
    from tgispy.server import ServerHandle

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


#: The shared real-model server's settings: 4 llama.cpp slots of 1,024 tokens each, and TGI's 429
#: once 4 requests are in flight (tgispy's client caps itself at that, from /info). One llama.cpp
#: thread: with two on a busy 2-core machine its threads spin-wait for each other and generation
#: collapses (a 2-minute test timed out at load 7; see README's benchmark notes).
MODEL_SERVER_ARGS = [
    "--backend",
    "llama",
    "--parallel",
    "4",
    "--threads",
    "1",
    "--ctx-size",
    "1024",
    "--max-concurrent-requests",
    "4",
]


@pytest.fixture(scope="session")
def model_server() -> Iterator[ServerHandle]:
    """The session's one real SmolLM2 server (``tgispy serve``, llama backend) on 127.0.0.1."""
    from tgispy.server import start_server

    with start_server(MODEL_SERVER_ARGS, timeout=180) as server:
        yield server
