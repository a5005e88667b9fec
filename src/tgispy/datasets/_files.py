"""Local readers for CSV, JSON / JSON Lines and Parquet files: rows as dicts, in file order.

CSV and JSON need nothing beyond the standard library; Parquet needs ``pyarrow``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tgispy.datasets._extras import require

__all__ = ["read_csv", "read_json", "read_parquet", "read_rows"]


def read_rows(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of a ``.csv``, ``.json``, ``.jsonl`` or ``.parquet`` file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix == ".parquet":
        return read_parquet(path)
    return read_json(path)


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of a CSV file with a header; columns of ints, floats or booleans are converted.

    Like ``datasets``' CSV loader (pandas' inference): a column becomes ``int`` when every value
    is an integer, ``float`` when every value is a number, ``bool`` for ``True``/``False``;
    empty cells are ``None``; anything else stays a string.
    """
    with Path(path).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        raw = [dict(row) for row in reader]
    converters = {column: _column_type([row.get(column) for row in raw]) for column in columns}
    rows = [{column: converters[column](row.get(column)) for column in columns} for row in raw]
    return columns, rows


def _column_type(values: Sequence[str | None]) -> Any:
    present = [v for v in values if v not in (None, "")]

    def each(convert: Any) -> Any:
        return lambda v: None if v in (None, "") else convert(v)

    if not present:
        return each(str)
    if all(v in ("True", "False") for v in present):
        return each(lambda v: v == "True")
    for convert in (int, float):
        try:
            for value in present:
                convert(value)
        except ValueError:
            continue
        return each(convert)
    return each(str)


def read_json(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of a JSON array of objects or of a JSON Lines file (one object per line)."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: row {index} is a {type(row).__name__}, not an object")
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns), rows


def read_parquet(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of a Parquet file (needs ``pyarrow``)."""
    parquet = require("pyarrow.parquet", "reading Parquet files")
    table = parquet.read_table(str(path))
    return list(table.column_names), list(table.to_pylist())
