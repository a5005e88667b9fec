"""Fixtures: start in-process sim replicas and ``tgispy.server`` subprocesses; stop them all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest

from tgispy.server import ServerHandle, start_server
from tgispy.server._config import SimConfig
from tgispy.tgi._transport import close_sessions

from ._replicas import Replica, start_replica

StartReplica = Callable[..., Awaitable[Replica]]
StartProcess = Callable[[Sequence[str]], ServerHandle]


@pytest.fixture
async def start() -> AsyncIterator[StartReplica]:
    """Start in-process sim replicas: ``await start(sim(...), **server_config)``."""
    started: list[Replica] = []

    async def _start(config: SimConfig | None = None, **server: Any) -> Replica:
        replica = await start_replica(config, **server)
        started.append(replica)
        return replica

    yield _start
    # Client connections first, so the servers do not wait on idle keep-alive connections.
    await close_sessions()
    for replica in started:
        await replica.stop()


@pytest.fixture
def process() -> Iterator[StartProcess]:
    """Start ``python -m tgispy.server --backend sim ...`` subprocesses; all stopped afterwards."""
    handles: list[ServerHandle] = []

    def _start(args: Sequence[str]) -> ServerHandle:
        handle = start_server(["--backend", "sim", *args], timeout=30.0)
        handles.append(handle)
        return handle

    yield _start
    for handle in handles:
        handle.stop(timeout=5.0)
