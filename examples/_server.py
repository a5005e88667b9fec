"""Shared by the examples: a TGI URL (given, or the embedded `tgispy serve` started for the run)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import tgispy as dspy

CORPUS = Path(__file__).parent / "data" / "capitals.jsonl"


@contextlib.contextmanager
def tgi_url(url: str | None) -> Iterator[str]:
    """``url`` as is, or a fresh embedded server (SmolLM2-135M on the CPU) for the duration."""
    if url:
        yield url
        return
    from tgispy.server import start_server

    print("starting the embedded TGI server (tgispy serve, SmolLM2-135M) ...", flush=True)
    with start_server(["--parallel", "2"]) as server:
        yield server.url


def lm(url: str, max_tokens: int = 48) -> dspy.HFClientTGI:
    """An HFClientTGI for ``url`` (a base URL such as ``http://127.0.0.1:8080``)."""
    host, port = url.rsplit(":", 1)
    return dspy.HFClientTGI(
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        port=int(port),
        url=host,
        max_tokens=max_tokens,
        cache=False,
    )
