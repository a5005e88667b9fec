"""The issue-16 examples run against `tgispy serve` with the real SmolLM2-135M model; their
output is checked for shape (a 135M model's answers are not checked for being right)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from tgispy.server import ServerHandle


def _example(name: str) -> Any:
    return importlib.import_module(f"examples.{name}")


def test_typed_extraction(model_server: ServerHandle) -> None:
    out = _example("typed_extraction").run(model_server.url)
    city = out["city"]
    # The grammar makes the JSON valid whatever the model: a parsed, typed City on the first try.
    assert set(city) == {"name", "country", "population_millions"}
    assert isinstance(city["name"], str) and isinstance(city["population_millions"], float)
    assert out["calls"] == 1


def test_assertion_guided(model_server: ServerHandle) -> None:
    out = _example("assertion_guided").run(model_server.url)
    assert isinstance(out["answer"], str)
    assert 1 <= out["calls"] <= 3 * 3  # up to 3 tries, each maybe continued
    if len(out["answer"].split()) > 2:  # a long answer was retried with the feedback shown
        assert out["retried_with_feedback"]


def test_react_with_retrieval(model_server: ServerHandle) -> None:
    out = _example("react_retrieval").run(model_server.url)
    assert isinstance(out["answer"], str)
    assert 1 <= out["calls"] <= 2 * 3
    for observation in out["observations"]:
        assert isinstance(observation, list | str)


@pytest.mark.timeout(120)
def test_rag_over_the_embedded_retriever(model_server: ServerHandle) -> None:
    example = _example("rag_embedded_retriever")
    with example.serve_rm(None) as rm_url:
        out = example.run(model_server.url, rm_url)
    assert out["context"][0] == "Egypt | Cairo is the capital of Egypt, on the Nile."
    assert len(out["context"]) == 2
    assert isinstance(out["answer"], str)
    assert out["prompt_has_context"]
