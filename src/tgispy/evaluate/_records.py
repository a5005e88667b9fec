"""Results files: one JSON line per finished example, appended as it finishes.

A results file survives ``kill -9`` at any moment: every line is written whole and flushed
before the next example is counted, so a killed run leaves every finished example but the ones
in flight, plus at most one torn last line, which :func:`read_results` ignores and
:class:`ResultsWriter` cuts off before appending.

Lines are JSON objects of two kinds:

* a header, written each time a run starts writing: ``{"tgispy_results": 1, "metric": ...,
  "total": ..., ...}`` (plus what the caller adds, e.g. ``"shard": [0, 3]``);
* an example: ``{"id", "index", "status", "example", "prediction", "score", "error",
  "latency_s", "usage"}``; ``status`` is ``"ok"``, ``"program_error"`` or ``"infra_error"``;
* a summary, written when a run ends (also by Ctrl-C or max_errors, never by ``kill -9``):
  ``{"tgispy_summary": {"score", "answered_score", "finished", "total", "program_errors",
  "infra_errors", ...}}``: DSPy 2.4's score and the score over the answered examples, side by
  side.

An example id may appear more than once (an infrastructure failure retried later); the last line
for an id wins.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.jsonl"
    >>> with ResultsWriter(path, {"metric": "em", "total": 1}) as out:
    ...     out.write({"id": "a", "index": 0, "status": "ok", "score": True})
    >>> read_results(path).records["a"]["score"]
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from tgispy.errors import ConfigError
from tgispy.primitives import Example

__all__ = [
    "HEADER_KEY",
    "SUMMARY_KEY",
    "ResultsFile",
    "ResultsWriter",
    "example_ids",
    "jsonable",
    "parse_shard",
    "read_results",
    "shard_indices",
]

HEADER_KEY: Final = "tgispy_results"
SUMMARY_KEY: Final = "tgispy_summary"
FORMAT_VERSION: Final = 1


# ---- pure: ids, shards, JSON values --------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: examples and mappings become objects, unknown values strings.

    Example:
        >>> jsonable({"answer": "4", "n": (1, 2), "x": object})
        {'answer': '4', 'n': [1, 2], 'x': "<class 'object'>"}
    """
    if isinstance(value, Example):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def example_ids(examples: Sequence[Example], id_field: str | None = None) -> list[str]:
    """A stable id per example: its ``id_field`` value, else a hash of its inputs.

    Hash ids are the first 16 hex digits of SHA-256 over the inputs as canonical JSON; the
    second example with the same inputs gets ``"#1"`` appended, the third ``"#2"``, so a
    devset with repeated inputs still gives each line its own id (in file order).

    Raises:
        ConfigError: an example lacks ``id_field``, or two share a value.

    Example:
        >>> ex = Example(question="2+2?", answer="4").with_inputs("question")
        >>> a, b = example_ids([ex, ex])
        >>> len(a), b == a + "#1"
        (16, True)
        >>> example_ids([Example(id=7, q="x").with_inputs("q")], id_field="id")
        ['7']
    """
    ids: list[str] = []
    if id_field is not None:
        seen: set[str] = set()
        for index, example in enumerate(examples):
            if id_field not in example:
                raise ConfigError(
                    f"example {index} has no {id_field!r} field to use as its id; name a field "
                    "every example has, or leave the id out to hash the inputs"
                )
            value = str(example[id_field])
            if value in seen:
                raise ConfigError(
                    f"two examples share the id {value!r} (field {id_field!r}); ids must be "
                    "unique, or leave the id out to hash the inputs"
                )
            seen.add(value)
            ids.append(value)
        return ids
    occurrences: dict[str, int] = {}
    for example in examples:
        inputs = jsonable(dict(example.inputs().items()))
        canonical = json.dumps(inputs, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
        seen_before = occurrences.get(digest, 0)
        occurrences[digest] = seen_before + 1
        ids.append(digest if seen_before == 0 else f"{digest}#{seen_before}")
    return ids


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` as ``(I, N)``, with ``0 <= I < N``.

    Example:
        >>> parse_shard("1/3")
        (1, 3)
    """
    index, sep, count = spec.partition("/")
    try:
        if not sep:
            raise ValueError(spec)
        i, n = int(index), int(count)
    except ValueError:
        raise ConfigError(f"--shard expects I/N such as 0/4, got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {spec}: need N >= 1 and 0 <= I < N (shards count from 0)")
    return i, n


def shard_indices(count: int, shard: tuple[int, int]) -> list[int]:
    """The positions of shard ``I/N`` among ``count`` examples: every N-th, starting at I.

    Shards ``0/N`` ... ``N-1/N`` cover every position exactly once, and a position's shard never
    changes when lines are appended to the data.

    Example:
        >>> shard_indices(7, (1, 3))
        [1, 4]
    """
    index, total = shard
    return list(range(index, count, total))


# ---- reading ----------------------------------------------------------------------


@dataclass
class ResultsFile:
    """What :func:`read_results` found in a results file.

    Attributes:
        headers: every header line, oldest first (one per run that wrote the file).
        records: the last example line per id, in the order ids first appeared.
        torn: whether the last line was cut off (a run killed while writing it); it is ignored.
        lines: how many example lines there were (retries included).
        summaries: the summary of each run that ended (oldest first).
    """

    headers: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    torn: bool = False
    lines: int = 0

    @property
    def header(self) -> dict[str, Any]:
        """The newest header merged over the older ones (``{}`` when there is none)."""
        merged: dict[str, Any] = {}
        for header in self.headers:
            merged.update(header)
        return merged


def read_results(path: str | Path) -> ResultsFile:
    """Read a results file; a missing file reads as empty, a torn last line is ignored.

    Raises:
        ConfigError: a line other than the last is not a JSON object (not a results file).
    """
    file = Path(path)
    found = ResultsFile()
    if not file.exists():
        return found
    data = file.read_bytes()
    lines = data.split(b"\n")
    # A file that does not end in "\n" was cut mid-line: its last piece is a torn line.
    last_complete = len(lines) - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            item = None
        if not isinstance(item, dict):
            if number - 1 == last_complete:
                found.torn = True
                continue
            raise ConfigError(f"{path}:{number}: not a results line (a JSON object)") from None
        if number - 1 == last_complete:  # a whole JSON object with no newline after it
            found.torn = True
            continue
        if HEADER_KEY in item:
            found.headers.append(item)
            continue
        if SUMMARY_KEY in item:
            found.summaries.append(item[SUMMARY_KEY])
            continue
        example_id = item.get("id")
        if not isinstance(example_id, str):
            raise ConfigError(f"{path}:{number}: a results line without an 'id'")
        found.lines += 1
        found.records.pop(example_id, None)
        found.records[example_id] = item
    return found


# ---- writing ----------------------------------------------------------------------


class ResultsWriter:
    """Appends lines to a results file, each written whole and flushed at once.

    Opening cuts off a torn last line left by a killed run, then writes a header. Each
    :meth:`write` is one ``write`` of a complete line followed by a flush to the OS, so another
    process (or a later run) sees every line that :meth:`write` returned from; :meth:`close`
    also ``fsync``\\ s, for power loss.

    Args:
        path: the file (created if missing, with its directory).
        header: fields for this run's header line (``metric``, ``total``, ...).
        fresh: start the file over instead of appending.
    """

    def __init__(self, path: str | Path, header: Mapping[str, Any], *, fresh: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.path.write_bytes(b"")
        else:
            _cut_torn_tail(self.path)
        self._file = self.path.open("a", encoding="utf-8")
        self.write({HEADER_KEY: FORMAT_VERSION, **header})

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line and flush it."""
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        self._file.write(line)
        self._file.flush()

    def close(self) -> None:
        """Flush, fsync and close (idempotent)."""
        if self._file.closed:
            return
        self._file.flush()
        with contextlib.suppress(OSError):  # e.g. a file system without fsync
            os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _cut_torn_tail(path: Path) -> None:
    """Truncate ``path`` after its last newline (a torn last line is dropped)."""
    if not path.exists():
        return
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # Search backwards for the last newline, a block at a time.
        end = size
        block = 65536
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                f.truncate(start + cut + 1)
                return
            end = start
        f.truncate(0)
