"""Reading a passage corpus: JSONL, JSON, CSV or TSV (ColBERT's ``pid \\t text`` collection).

Every passage becomes ``{"pid": ..., "text": ..., **other fields}``. Errors name the file, the
line and what is wrong.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tgispy.errors import ConfigError

__all__ = ["TEXT_KEYS", "load_corpus", "normalize_passages"]

#: field names read as the passage text, in order of preference
TEXT_KEYS = ("text", "long_text", "passage", "content", "contents", "body")
_ID_KEYS = ("pid", "id", "_id", "doc_id", "docid")


def _passage(record: Mapping[str, Any], index: int, where: str) -> dict[str, Any]:
    text_key = next((k for k in TEXT_KEYS if isinstance(record.get(k), str)), None)
    if text_key is None:
        raise ConfigError(
            f"{where}: no passage text; each record needs one of the string fields "
            f"{', '.join(TEXT_KEYS)} (found: {', '.join(map(str, record)) or 'none'})"
        )
    out = {k: v for k, v in record.items() if k not in TEXT_KEYS}
    pid = next((record[k] for k in _ID_KEYS if k in record), index)
    if "title" in record and isinstance(record["title"], str) and record["title"]:
        # ColBERT's wiki collections show "title | text"
        out["text"] = f"{record['title']} | {record[text_key]}"
    else:
        out["text"] = record[text_key]
    out["pid"] = pid
    return out


def normalize_passages(passages: Iterable[Any]) -> list[dict[str, Any]]:
    """In-memory passages (strings or dicts) as ``{"pid", "text", ...}`` records.

    Example:
        >>> normalize_passages(["Paris is in France."])
        [{'text': 'Paris is in France.', 'pid': 0}]
    """
    out: list[dict[str, Any]] = []
    for index, item in enumerate(passages):
        if isinstance(item, str):
            out.append({"text": item, "pid": index})
        elif isinstance(item, Mapping):
            out.append(_passage(item, index, f"passage {index}"))
        else:
            raise ConfigError(
                f"passage {index} is a {type(item).__name__}; give strings or dicts with a "
                "'text' field"
            )
    return out


def load_corpus(path: str | Path) -> list[dict[str, Any]]:
    """Read ``path`` (``.jsonl``, ``.json``, ``.csv``, ``.tsv``) into passage records.

    Raises:
        ConfigError: a missing or empty file, an unknown extension, a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"corpus file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if suffix == ".jsonl":
        records = _jsonl(path, text)
    elif suffix == ".json":
        records = _json(path, text)
    elif suffix in (".csv", ".tsv"):
        records = _table(path, text, "\t" if suffix == ".tsv" else ",")
    else:
        raise ConfigError(
            f"{path}: unknown corpus format {suffix or '(no extension)'}; use .jsonl, .json, "
            ".csv or .tsv"
        )
    if not records:
        raise ConfigError(f"{path}: the corpus has no passages")
    return records


def _jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: not valid JSON ({exc})") from None
        if isinstance(record, str):
            record = {"text": record}
        if not isinstance(record, dict):
            raise ConfigError(f"{path}:{number}: expected a JSON object with a 'text' field")
        records.append(_passage(record, len(records), f"{path}:{number}"))
    return records


def _json(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("passages", data.get("data"))
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON list of passages (or {{'passages': [...]}})")
    return normalize_passages(data)


def _table(path: Path, text: str, delimiter: str) -> list[dict[str, Any]]:
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if any(k in header for k in TEXT_KEYS):
        records: list[dict[str, Any]] = []
        for number, row in enumerate(rows[1:], 2):
            if len(row) != len(header):
                raise ConfigError(
                    f"{path}:{number}: {len(row)} columns, the header has {len(header)}"
                )
            records.append(
                _passage(dict(zip(header, row, strict=True)), len(records), f"{path}:{number}")
            )
        return records
    if delimiter == "\t" and all(len(r) >= 2 for r in rows):
        # ColBERT's collection.tsv: pid \t text [\t title]
        return [
            _passage(
                {"pid": r[0], "text": r[1], **({"title": r[2]} if len(r) > 2 else {})},
                i,
                f"{path}:{i + 1}",
            )
            for i, r in enumerate(rows)
        ]
    raise ConfigError(
        f"{path}: no text column; the first row must name one of {', '.join(TEXT_KEYS)} "
        "(or, for .tsv, use ColBERT's 'pid<TAB>text' lines)"
    )
