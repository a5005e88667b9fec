"""DSPy 2.4.17's public names under tgispy's namespaces: the count per namespace only goes up.

The list is ``shared/dspy24/public_names.json`` (read by importing dspy-ai 2.4.17); a copy lives in
``golden/`` so the suite runs from a bare clone, and the two must agree when both exist.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).parent
_COPY = _HERE / "golden" / "dspy24_public_names.json"
_SHARED = _HERE.parents[1].parent / "shared" / "dspy24" / "public_names.json"
_NAMES: dict[str, list[dict[str, Any]]] = json.loads(_COPY.read_text())["namespaces"]

# Present names per namespace when this was last raised. Raise it when you add names; a drop
# means a DSPy 2.4 import that used to work now fails.
FLOOR = {
    "dspy": 110,
    "dspy.predict": 9,
    "dspy.teleprompt": 24,
    "dspy.retrieve": 2,
    "dspy.primitives": 25,
    "dspy.functional": 5,
    "dspy.evaluate": 6,
    "dspy.signatures": 14,
    "dspy.utils": 1,
    "dspy.datasets": 4,
}


def _present(namespace: str) -> list[str]:
    module_name = "tgispy" + namespace[len("dspy") :]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    return [item["name"] for item in _NAMES[namespace] if _has(module, item["name"])]


def _has(module: Any, name: str) -> bool:
    try:
        getattr(module, name)
    except AttributeError:
        return False
    return True


def test_copy_matches_the_shared_list() -> None:
    if not _SHARED.exists():
        pytest.skip("no shared/ checkout beside this one")
    assert json.loads(_SHARED.read_text()) == json.loads(_COPY.read_text())


def test_every_namespace_has_a_floor() -> None:
    assert set(FLOOR) == set(_NAMES)


@pytest.mark.parametrize("namespace", sorted(FLOOR))
def test_present_count_never_drops(namespace: str) -> None:
    present = _present(namespace)
    assert len(present) >= FLOOR[namespace], (
        f"{namespace}: {len(present)} of {len(_NAMES[namespace])} DSPy 2.4 names present, "
        f"fewer than the recorded {FLOOR[namespace]}"
    )
