"""Robustness fixtures: `tgispy serve` subprocesses on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tgispy.server import start_server
from tgispy.server._process import ServerHandle


@pytest.fixture(scope="module")
def sim_server() -> Iterator[ServerHandle]:
    """`tgispy serve --backend sim` in a subprocess on 127.0.0.1 (no faults)."""
    with start_server(["--backend", "sim", "--sim-text", "The answer is 42."], timeout=60) as s:
        yield s
