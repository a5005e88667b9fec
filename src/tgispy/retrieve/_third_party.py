"""The error of DSPy 2.4's third-party retriever modules (Chroma, Qdrant, pgvector ...)."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["raise_out_of_scope"]


def raise_out_of_scope(module: str, name: str, what: str) -> NoReturn:
    """Raise the ``ImportError`` of an out-of-scope retriever module."""
    raise ImportError(
        f"dspy.retrieve.{module} ({name}) is out of scope for tgispy: it needs {what}, which "
        "tgispy does not run or reach. Serve your passages over ColBERTv2's HTTP protocol "
        "instead -- `tgispy serve-rm passages.jsonl --port 8893` (an embedded BM25 index) or a "
        "ColBERT server -- and use `dspy.configure(rm=dspy.ColBERTv2(url='http://127.0.0.1', "
        "port=8893))`; in-process, `dspy.configure(rm=tgispy.retrieve.BM25('passages.jsonl'))`.",
        name=f"tgispy.retrieve.{module}",
    )
