"""Shared plumbing of the atheris harnesses: seed corpora and the one crash rule.

The rule every harness checks: whatever the input, a parser returns a value or raises one of
tgispy's typed errors (:class:`~tgispy.errors.TgispyError`; on the server side, the HTTP front's
``Problem``). Any other exception propagates to atheris, which reports it as a crash and saves
the input as ``crash-<sha1>``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SNAPSHOTS = REPO / "tests" / "tgi" / "data" / "snapshots"
FACTS = REPO / "tests" / "tgi" / "data" / "protocol_facts.json"


#: added to every corpus; harnesses read their first bytes as selectors or sizes, so each body
#: comes with a few prefixes
HOSTILE_SEEDS = [
    prefix + body
    for prefix in (b"", b"\x00", b"\x01\xf4\x00")
    for body in (
        b"[" * 3000 + b"]" * 3000,
        b'{"error":' * 3000,
        b'{"version": "' + b"9" * 5000 + b'"}',
        b'{"generated_text": "x", "details": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    )
]


def snapshot_items() -> Iterator[Any]:
    """Every response recorded from a real TGI server (the items of list snapshots too)."""
    for path in sorted(SNAPSHOTS.glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        yield from data if isinstance(data, list) else [data]


def protocol_facts() -> Any:
    return json.loads(FACTS.read_text(encoding="utf-8"))


def _corpus_dir(argv: list[str]) -> Path | None:
    """The first positional argument: libFuzzer's corpus directory, if one was given."""
    for arg in argv[1:]:
        if not arg.startswith("-"):
            path = Path(arg)
            return None if path.is_file() else path  # a file: replaying one input
    return None


def seed_corpus(argv: list[str], seeds: Callable[[], Iterator[bytes]]) -> None:
    """Fill an empty (or missing) corpus directory with seeds, so fuzzing starts from real data.

    The seeds include the hostile shapes that random mutation rarely builds: JSON nested
    thousands deep and numbers thousands of digits long.

    Crash inputs go next to the corpus (``<corpus>-crashes/``) rather than into the current
    directory, unless ``-artifact_prefix`` says otherwise.
    """
    corpus = _corpus_dir(argv)
    if corpus is None:
        return
    if not any(arg.startswith("-max_len=") for arg in argv):
        # libFuzzer's default (4096 bytes) is too short for the inputs that matter here:
        # nesting past Python's recursion limit, numbers past int()'s 4300 digits
        argv.append("-max_len=20000")
    if not any(arg.startswith("-artifact_prefix=") for arg in argv):
        crashes = corpus.with_name(corpus.name + "-crashes")
        crashes.mkdir(parents=True, exist_ok=True)
        argv.append(f"-artifact_prefix={crashes}/")
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    count = 0
    for count, seed in enumerate([*seeds(), *HOSTILE_SEEDS], start=1):
        (corpus / f"seed-{count:04d}").write_bytes(seed)
    print(f"seeded {corpus} with {count} inputs", file=sys.stderr)
