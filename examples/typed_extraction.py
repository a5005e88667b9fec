"""Typed extraction: a TypedPredictor fills a pydantic model; TGI's grammar keeps it valid JSON.

usage: python examples/typed_extraction.py [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pydantic

import tgispy as dspy

try:
    from examples._server import lm, tgi_url
except ImportError:  # run as a script from examples/
    from _server import lm, tgi_url  # type: ignore[no-redef]


class City(pydantic.BaseModel):
    name: str
    country: str
    population_millions: float


class ExtractCity(dspy.Signature):
    """Extract the city described in the text."""

    text: str = dspy.InputField()
    city: City = dspy.OutputField()


def run(url: str) -> dict[str, Any]:
    """Extract one city; return the model's fields and how many LM calls it took."""
    client = lm(url, max_tokens=64)
    with dspy.context(lm=client):
        extract = dspy.TypedPredictor(ExtractCity)
        city = extract(text="Paris, the capital of France, has about 2.1 million people.").city
    return {"city": city.model_dump(), "calls": len(client.history)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running TGI server (default: start tgispy serve)")
    args = parser.parse_args()
    with tgi_url(args.url) as url:
        print(json.dumps(run(url), indent=2))


if __name__ == "__main__":
    main()
