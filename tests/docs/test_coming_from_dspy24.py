"""docs/coming_from_dspy24.md covers DSPy 2.4.17's whole public surface, and its claims hold.

Every public name of every 2.4 namespace (``tests/program/golden/dspy24_public_names.json``, the
project's copy of the shared list) must be on the page, in the names column of some row; every
name in a *supported* or *differs* row must exist in tgispy under the same path; names 2.4's
list marks out of scope (hosted and in-process clients) must sit in *out of scope* rows. A *not
yet* row is not checked against tgispy: engineers add names in parallel, and the row is then
moved by hand.
"""

from __future__ import annotations

import importlib
import json
import re

import pytest
from tests.docs._blocks import ROOT

PAGE = ROOT / "docs" / "coming_from_dspy24.md"
NAMES = ROOT / "tests" / "program" / "golden" / "dspy24_public_names.json"
STATUSES = {"supported", "differs", "out of scope", "not yet"}
_TOKEN = re.compile(r"`([A-Za-z_][\w.]*)`")

Pair = tuple[str, str]  # (2.4 namespace, name)


def surface() -> dict[Pair, str]:
    """(namespace, name) -> 2.4's scope ("yes" or "error")."""
    spaces = json.loads(NAMES.read_text())["namespaces"]
    return {(ns, item["name"]): item["scope"] for ns, items in spaces.items() for item in items}


def rows() -> list[tuple[str, str, list[str]]]:
    """(feature, status, name tokens) of every table row of the page."""
    out = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 4 or set(cells[0]) <= {"-"}:
            continue
        if cells[1] == "status":
            continue
        out.append((cells[0], cells[1], _TOKEN.findall(cells[2])))
    return out


def pairs_of(token: str, known: dict[Pair, str]) -> list[Pair]:
    """``dspy.ns.Name`` is one pair; a bare ``Name`` is that name in every 2.4 namespace."""
    if token.startswith("dspy."):
        ns, _, name = token.rpartition(".")
        return [(ns, name)]
    return [pair for pair in known if pair[1] == token]


def classified() -> dict[Pair, set[str]]:
    known = surface()
    qualified: dict[Pair, set[str]] = {}
    bare: dict[Pair, set[str]] = {}
    for feature, status, tokens in rows():
        assert status in STATUSES, (feature, status)
        for token in tokens:
            found = pairs_of(token, known)
            assert found, f"{token!r} (row {feature!r}) is not a DSPy 2.4 public name"
            target = qualified if token.startswith("dspy.") else bare
            for pair in found:
                target.setdefault(pair, set()).add(status)
    # A qualified mention is more specific than a bare one: it decides its namespace's status.
    return {pair: qualified.get(pair) or bare[pair] for pair in {*qualified, *bare}}


def tgispy_has(pair: Pair) -> bool:
    ns, name = pair
    module = importlib.import_module("tgispy" + ns.removeprefix("dspy"))
    return hasattr(module, name)


def test_the_page_names_every_public_name_of_dspy_24() -> None:
    missing = sorted(f"{ns}.{name}" for ns, name in set(surface()) - set(classified()))
    assert not missing, f"add these DSPy 2.4 names to a row of {PAGE.name}: {missing}"


def test_supported_and_differing_names_exist_under_the_same_path() -> None:
    claimed = [p for p, s in classified().items() if s & {"supported", "differs"}]
    assert len(claimed) > 150
    absent = sorted(f"{ns}.{name}" for ns, name in claimed if not tgispy_has((ns, name)))
    assert not absent, f"{PAGE.name} says these exist, tgispy lacks them: {absent}"


def test_each_name_has_one_status() -> None:
    mixed = {f"{ns}.{n}": s for (ns, n), s in classified().items() if len(s) > 1}
    assert not mixed, mixed


def test_names_2_4_marks_out_of_scope_are_in_out_of_scope_rows() -> None:
    status = classified()
    errors = [pair for pair, scope in surface().items() if scope == "error"]
    assert errors
    wrong = sorted(f"{ns}.{n}" for ns, n in errors if status[(ns, n)] != {"out of scope"})
    assert not wrong, wrong


@pytest.mark.parametrize("name", ["Claude", "HFModel", "Bedrock"])
def test_an_out_of_scope_client_names_the_alternative(name: str) -> None:
    import tgispy
    from tgispy.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dspy\.OpenAI\(model="):
        getattr(tgispy, name)(model="m")
