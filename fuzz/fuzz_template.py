"""atheris: the DSPy 2.4 template's completion parser (``Template.extract``) on arbitrary text.

Run: ``python fuzz/fuzz_template.py /tmp/tgispy-fuzz/template -max_total_time=60``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import atheris
from _common import seed_corpus

with atheris.instrument_imports(include=["tgispy"]):
    from tgispy.adapters import Template

TEMPLATES = [
    Template(
        "Answer.",
        [("question", "Question:", "${question}", None), ("answer", "Answer:", "${answer}", None)],
    ),
    Template(
        "Think.",
        [
            ("context", "Context:", "${context}", None),
            ("question", "Question:", "${question}", None),
            (
                "rationale",
                "Reasoning: Let's think step by step in order to",
                "${produce the answer}.",
                None,
            ),
            ("answer", "Answer:", "${answer}", None),
        ],
    ),
    Template(
        "Multi.",
        [("a", "A:\n", "${a}", None), ("b", "B :", "${b}", None), ("c", "C:", "${c}", None)],
    ),
]


def seeds() -> Iterator[bytes]:
    yield b"\x00 Paris"
    yield b"\x01 we know Paris is in France.\nAnswer: Paris"
    yield b"\x02\x02 1\nB : 2\nC: 3\n\nA:\n4"


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    template = TEMPLATES[data[0] % len(TEMPLATES)]
    prefilled = data[1] % (len(template.keys) + 1)
    example = dict.fromkeys(template.keys[:prefilled], "given")
    completion = data[2:].decode("utf-8", "replace")
    out = template.extract(example, completion)
    if not isinstance(out, dict) or not all(isinstance(v, str) for v in out.values()):
        raise AssertionError(out)
    template.format([out], example)  # the parsed fields can be shown again as a demo


def main() -> None:
    seed_corpus(sys.argv, seeds)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
