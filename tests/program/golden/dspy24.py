"""Differential scenarios: DSPy 2.4.17 is the oracle for tgispy's prompts and parsing.

Each scenario is a random program -- a string or class signature (custom prefixes, descriptions,
multi-line descriptions and docstrings, trailing-newline prefixes), Predict or ChainOfThought,
labeled and augmented demos, inputs (passages lists, multi-line values, empty strings, missing
inputs), ``n``/``temperature``/``max_tokens`` config, and DummyLM answers that stop short or run on.
The same runner executes a scenario with either library.

Recording (outside the test suite, in a virtualenv with ``pip install dspy-ai==2.4.17``)::

    python tests/program/golden/dspy24.py --seed 1 --count 150 \\
        > tests/program/golden/dspy24_scenarios.json

The test suite replays the recorded scenarios with tgispy and compares every prompt, the
generation parameters of every request, the prediction and its completions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import io
import json
import random
from typing import Any

_INPUT_NAMES = [
    "question",
    "context",
    "passages",
    "topic",
    "input1",
    "someName",
    "HTTPCode",
    "answers",
]
_OUTPUT_NAMES = ["answer", "summary", "output2", "finalScore", "search_query"]
_WORDS = [
    "Paris",
    "the  capital\tof France",
    "a\nmulti line\nvalue",
    "",
    "x",
    "Answer: tricky",
    "  padded  ",
    "Question: inside",
    "«quoted»",
]


def generate(seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` random scenarios, reproducible from ``seed``."""
    rnd = random.Random(seed)

    def value(name: str) -> Any:
        if name in ("context", "passages") and rnd.random() < 0.6:
            pool = [*_WORDS[:3], "p1", "p2 has\nnewline", "Rome"]
            return [rnd.choice(pool) for _ in range(rnd.randint(0, 3))]
        if name == "answers" and rnd.random() < 0.5:
            return [rnd.choice(["42", " forty two ", "x"]) for _ in range(rnd.randint(1, 2))]
        return rnd.choice(_WORDS)

    def field(name: str, io_: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": name, "io": io_, "annotated": rnd.random() < 0.4}
        r = rnd.random()
        if r < 0.15:
            spec["prefix"] = "Custom " + name + ":"
        elif r < 0.2:
            spec["prefix"] = name.upper() + ":\n"
        elif r < 0.23:
            spec["prefix"] = "NoColon"
        r = rnd.random()
        if r < 0.2:
            spec["desc"] = "a short description"
        elif r < 0.27:
            spec["desc"] = "multi\nline  desc"
        elif r < 0.3:
            spec["desc"] = "often between 1 and 5 words"
        return spec

    def scenario() -> dict[str, Any]:
        ins = rnd.sample(_INPUT_NAMES, rnd.randint(1, 3))
        outs = rnd.sample(_OUTPUT_NAMES, rnd.randint(1, 3))
        sig: dict[str, Any]
        if rnd.random() < 0.4:
            sig = {"kind": "str", "sig": ", ".join(ins) + " -> " + ", ".join(outs)}
            if rnd.random() < 0.5:
                sig["instructions"] = rnd.choice(
                    [
                        "Answer questions with short factoid answers.",
                        "  Multi\n  line instructions.\n  ",
                        "",
                    ]
                )
            fields = [{"name": n, "io": "in"} for n in ins] + [
                {"name": n, "io": "out"} for n in outs
            ]
        else:
            fields = [field(n, "in") for n in ins] + [field(n, "out") for n in outs]
            rnd.shuffle(fields)
            sig = {"kind": "class", "fields": fields}
            if rnd.random() < 0.7:
                sig["doc"] = rnd.choice(
                    [
                        "Answer questions with short factoid answers.",
                        "\n    Multi-line docstring.\n    Second line.\n    ",
                    ]
                )
        module = rnd.choice(["predict", "cot"])
        names = [f["name"] for f in fields]
        demos = []
        for _ in range(rnd.choice([0, 0, 1, 2, 3])):
            demo = {}
            for n in names + (["rationale"] if module == "cot" else []):
                if rnd.random() < 0.75:
                    demo[n] = value(n)
            if rnd.random() < 0.35:
                demo["augmented"] = True
            demos.append(demo)
        inputs = {
            f["name"]: value(f["name"]) for f in fields if f["io"] == "in" and rnd.random() < 0.92
        }
        answers = []
        for _ in range(rnd.randint(1, 6)):
            parts = [rnd.choice(["x", " produce it. We know", "Paris\n", "", "v a l"])]
            for f in fields:
                if f["io"] == "out" and rnd.random() < 0.7:
                    label = (f.get("prefix") or "").strip()
                    label = label or " ".join(w.capitalize() for w in f["name"].split("_")) + ":"
                    parts.append(label + " " + rnd.choice(["val", "two words", "", "multi\nline"]))
            text = "\n".join(parts) if rnd.random() < 0.8 else rnd.choice(["", "  ", "only"])
            answers.append(text)
        config: dict[str, Any] = {}
        if rnd.random() < 0.3:
            config["n"] = rnd.randint(2, 3)
        if rnd.random() < 0.2:
            config["temperature"] = rnd.choice([0.0, 0.5])
        if rnd.random() < 0.2:
            config["max_tokens"] = rnd.choice([40, 100, 300])
        return {
            "sig": sig,
            "module": module,
            "demos": demos,
            "inputs": inputs,
            "answers": answers,
            "config": config,
        }

    return [scenario() for _ in range(count)]


def build_signature(dspy: Any, spec: dict[str, Any]) -> Any:
    if spec["kind"] == "str":
        return dspy.Signature(spec["sig"], spec.get("instructions"))
    namespace: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    if spec.get("doc") is not None:
        namespace["__doc__"] = spec["doc"]
    for f in spec["fields"]:
        kwargs = {k: f[k] for k in ("prefix", "desc") if f.get(k) is not None}
        make = dspy.InputField if f["io"] == "in" else dspy.OutputField
        namespace[f["name"]] = make(**kwargs)
        if f.get("annotated"):
            annotations[f["name"]] = str
    namespace["__annotations__"] = annotations
    return type("Sig", (dspy.Signature,), namespace)


def run(dspy: Any, dummy_lm: Any, scenario: dict[str, Any], face: str = "sync") -> dict[str, Any]:
    """Run one scenario with library ``dspy``; return what the test compares.

    ``face="async"`` (tgispy only) runs the module through ``await module.acall(...)``.
    """
    signature = build_signature(dspy, scenario["sig"])
    lm = dummy_lm(list(scenario["answers"]))
    dspy.settings.configure(lm=lm, trace=[])
    make = dspy.ChainOfThought if scenario["module"] == "cot" else dspy.Predict
    module = make(signature, **scenario["config"])
    predictor = module._predict if hasattr(module, "_predict") else module
    predictor.demos = [dspy.Example(**d) for d in scenario["demos"]]
    out: dict[str, Any] = {}
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # DSPy's DummyLM prints every prompt
            if face == "async":
                pred = asyncio.run(module.acall(**scenario["inputs"]))
            else:
                pred = module(**scenario["inputs"])
        out["pred"] = dict(pred.items())
        out["completions"] = dict(pred.completions.items())
        out["error"] = None
    except Exception as exc:
        # DSPy raises AssertionError / AttributeError where tgispy raises ParseError /
        # ConfigError; the test only checks that both failed.
        out["error"] = type(exc).__name__
    out["prompts"] = [entry["prompt"] for entry in lm.history]
    kwargs = []
    for entry in lm.history:
        # DSPy's DummyLM swallows `n` from the recorded kwargs; compare the rest.
        recorded = dict(entry.get("raw_kwargs", entry.get("kwargs")))
        recorded.pop("n", None)
        kwargs.append(recorded)
    out["kwargs"] = kwargs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=150)
    args = parser.parse_args()
    import dspy  # the oracle: dspy-ai==2.4.17
    from dspy.utils.dummies import DummyLM

    scenarios = generate(args.seed, args.count)
    recorded = [{"scenario": sc, "expected": run(dspy, DummyLM, sc)} for sc in scenarios]
    header = {"dspy_version": importlib.metadata.version("dspy-ai"), "seed": args.seed}
    print(json.dumps({"recorded_with": header, "cases": recorded}, ensure_ascii=False, indent=0))


if __name__ == "__main__":
    main()
