"""Paths to the vendored TGI reference data (see data/README.md for its provenance)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
SNAPSHOTS = DATA / "snapshots"


@cache
def load_json(name: str) -> Any:
    """A JSON file under ``data/``, decoded once per test session."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def protocol_facts() -> dict[str, Any]:
    facts: dict[str, Any] = load_json("protocol_facts.json")
    return facts
