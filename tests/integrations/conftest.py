"""Fixtures for the DSPy 3.4 bridge: scripted TGI replicas on 127.0.0.1, a fresh DSPy cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from tgispy.testing import Recorded, Reply, ScriptedTGI

Script = Iterable[Reply] | Callable[[Recorded], Reply]


@pytest.fixture
def dspy_memory_cache() -> Iterator[None]:
    """A fresh, memory-only DSPy response cache for one test (nothing written to ~/.dspy_cache)."""
    import dspy

    # vars(): reading dspy.cache would build DSPy's default disk cache in the home directory
    previous = vars(dspy).get("cache")
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
    yield
    if previous is None:
        vars(dspy).pop("cache", None)
    else:
        dspy.cache = previous


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedTGI]]:
    """Start ScriptedTGI replicas on 127.0.0.1; all are stopped when the test ends."""
    servers: list[ScriptedTGI] = []

    def start(script: Script = (), **kwargs: Any) -> ScriptedTGI:
        server = ScriptedTGI(script, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def posts(server: ScriptedTGI, path: str | None = None) -> list[Recorded]:
    """The generation requests a scripted replica received (``/info`` is not recorded)."""
    return [r for r in server.requests if path is None or r.path == path]
