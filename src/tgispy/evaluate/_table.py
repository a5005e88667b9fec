"""``Evaluate(display_table=...)``'s results table: plain text in a terminal, HTML in notebooks.

Rendering is pure (:func:`render_text`, :func:`render_html`); :func:`display_table` only decides
where the output goes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from tgispy.evaluate._result import column_order

__all__ = ["display_table", "render_html", "render_text", "truncate_cell"]

MAX_WORDS = 25
MAX_CHARS = 60


def truncate_cell(content: Any, max_words: int = MAX_WORDS, max_chars: int | None = None) -> str:
    """The cell's text cut to ``max_words`` words (DSPy 2.4) and ``max_chars`` characters.

    Example:
        >>> truncate_cell("one two three", max_words=2)
        'one two...'
    """
    text = "" if content is None else str(content)
    words = text.split()
    if len(words) > max_words:
        text = " ".join(words[:max_words]) + "..."
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 3].rstrip() + "..."
    return text


def _score_cell(value: Any) -> str:
    return f"✔️ [{value}]" if value else str(value)


def _cells(
    records: Sequence[Mapping[str, Any]], metric_name: str, max_chars: int | None
) -> tuple[list[str], list[list[str]]]:
    columns = column_order(records)
    rows = []
    for record in records:
        row = []
        for col in columns:
            value = record.get(col, "")
            if col == metric_name:
                row.append(_score_cell(value))
            else:
                # Keep one line per row in the text table.
                row.append(truncate_cell(value, max_chars=max_chars).replace("\n", " "))
        rows.append(row)
    return columns, rows


def render_text(
    records: Sequence[Mapping[str, Any]], metric_name: str, max_chars: int = MAX_CHARS
) -> str:
    """An aligned plain-text table, one line per record, cells truncated.

    Example:
        >>> print(render_text([{"question": "2+2?", "answer": "4", "em": True}], "em"))
          question  answer  em
        0 2+2?      4       ✔️ [True]
    """
    columns, rows = _cells(records, metric_name, max_chars)
    index_width = len(str(max(len(rows) - 1, 0)))
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]

    def line(first: str, cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
        return (first.ljust(index_width) + " " + "  ".join(padded)).rstrip()

    lines = [line("", columns)]
    lines += [line(str(i), row) for i, row in enumerate(rows)]
    return "\n".join(lines)


def render_html(records: Sequence[Mapping[str, Any]], metric_name: str) -> str:
    """An HTML table (cells escaped and truncated to 25 words, left-aligned, wrapping)."""
    columns, rows = _cells(records, metric_name, None)
    style = "text-align:left;white-space:pre-wrap;word-wrap:break-word;max-width:400px"
    head = "".join(f'<th style="{style}">{html.escape(c)}</th>' for c in ["", *columns])
    body = "".join(
        "<tr>"
        + f'<th style="{style}">{i}</th>'
        + "".join(f'<td style="{style}">{html.escape(cell)}</td>' for cell in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return False
    shell = get_ipython()
    return "IPKernelApp" in getattr(shell, "config", {})


def display_table(
    records: Sequence[Mapping[str, Any]], metric_name: str, limit: bool | int = True
) -> None:
    """Show the table: HTML in a Jupyter notebook, plain text on stdout otherwise.

    Args:
        records: one dict per example (:meth:`EvaluationResult.records`).
        metric_name: the score column.
        limit: ``True`` for every row, an int for the first ``limit`` rows.
    """
    shown = list(records) if limit is True else list(records)[: int(limit)]
    hidden = len(records) - len(shown)
    more = f"... {hidden} more rows not displayed ..." if hidden > 0 else ""
    if _in_notebook():
        from IPython.display import HTML, display  # type: ignore[import-not-found, unused-ignore]

        text = render_html(shown, metric_name)
        if more:
            text += f"<div style='text-align:center;font-weight:bold;margin:10px 0'>{more}</div>"
        display(HTML(text))
        return
    print(render_text(shown, metric_name))
    if more:
        print(more)
