"""``ColBERTv2``: DSPy 2.4's client for a ColBERTv2 search server (GET or POST ``query``, ``k``).

Also the client of ``tgispy serve-rm``, which speaks the same protocol. The in-process ColBERT
variants (``ColBERTv2RetrieverLocal``, ``ColBERTv2RerankerLocal``) and ``Pyserini`` load model
weights or a JVM in-process: they exist by name and raise an error that shows the route.
"""

from __future__ import annotations

import functools
import json
from typing import Any, NoReturn

from tgispy.dsp._utils import dotdict
from tgispy.errors import ConfigError, TgispyError

__all__ = [
    "ColBERTv2",
    "ColBERTv2RerankerLocal",
    "ColBERTv2RetrieverLocal",
    "Pyserini",
    "RetrieverError",
    "out_of_scope_retriever",
]

_TIMEOUT = 10.0
_ROUTE = (
    "Run the passages behind ColBERTv2's HTTP protocol instead: `tgispy serve-rm "
    "passages.jsonl --port 8893` (an embedded BM25 index) or a ColBERT server, then "
    "`dspy.configure(rm=dspy.ColBERTv2(url='http://127.0.0.1', port=8893))`; in-process, "
    "`dspy.configure(rm=tgispy.retrieve.BM25('passages.jsonl'))`."
)


class RetrieverError(TgispyError):
    """A retrieval server failed or answered something that is not ColBERTv2's protocol."""


def out_of_scope_retriever(name: str, what: str) -> NoReturn:
    """Raise the error of a retriever tgispy does not run in-process."""
    raise ConfigError(f"{name} ({what}) is out of scope for tgispy. {_ROUTE}")


def _request(url: str, query: str, k: int, post: bool) -> list[dict[str, Any]]:
    import urllib.error  # http.client and friends load only when a server is asked
    import urllib.parse
    import urllib.request

    if post:
        body = json.dumps({"query": query, "k": k}).encode()
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
    else:
        request = urllib.request.Request(
            f"{url}?{urllib.parse.urlencode({'query': query, 'k': k})}"
        )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            payload = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise RetrieverError(f"retrieval server {url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RetrieverError(f"cannot reach the retrieval server {url}: {exc}") from exc
    except ValueError as exc:
        raise RetrieverError(f"retrieval server {url} did not answer JSON") from exc
    topk = payload.get("topk") if isinstance(payload, dict) else None
    if not isinstance(topk, list) or not all(isinstance(p, dict) for p in topk):
        raise RetrieverError(f"retrieval server {url} answered without a 'topk' list")
    return topk


@functools.lru_cache(maxsize=4096)
def _cached_get(url: str, query: str, k: int) -> tuple[dict[str, Any], ...]:
    if k > 100:
        raise ConfigError(
            "Only k <= 100 is supported for the hosted ColBERTv2 server at the moment."
        )
    topk = _request(url, query, k, post=False)[:k]
    # As in DSPy 2.4: GET results get `long_text` from `text`; POST results are kept as sent.
    return tuple({**d, "long_text": d.get("text")} for d in topk)


@functools.lru_cache(maxsize=4096)
def _cached_post(url: str, query: str, k: int) -> tuple[dict[str, Any], ...]:
    return tuple(_request(url, query, k, post=True)[:k])


class ColBERTv2:
    """Search a ColBERTv2 server (or ``tgispy serve-rm``): DSPy 2.4's ``dspy.ColBERTv2``.

    Args:
        url: the search endpoint without the port, e.g. ``"http://127.0.0.1"`` or a full URL.
        port: appended as ``url:port`` when given.
        post_requests: send ``POST {"query", "k"}`` instead of ``GET ?query=&k=``.

    Results are cached in memory per (url, query, k).

    Example:
        >>> rm = ColBERTv2(url="http://127.0.0.1", port=8893)
        >>> rm.url
        'http://127.0.0.1:8893'
    """

    def __init__(
        self,
        url: str = "http://0.0.0.0",
        port: str | int | None = None,
        post_requests: bool = False,
    ) -> None:
        self.post_requests = post_requests
        self.url = f"{url}:{port}" if port else url

    def __call__(self, query: str, k: int = 10, simplify: bool = False) -> list[Any]:
        """The top ``k`` passages: ``dotdict`` records with ``long_text`` (or just the texts
        with ``simplify=True``)."""
        fetch = _cached_post if self.post_requests else _cached_get
        topk = fetch(self.url, query, k)
        if simplify:
            return [psg["long_text"] for psg in topk]
        return [dotdict(psg) for psg in topk]

    def __repr__(self) -> str:
        return f"ColBERTv2(url={self.url!r}, post_requests={self.post_requests})"


class ColBERTv2RetrieverLocal:
    """Out of scope: DSPy 2.4's in-process ColBERT index (needs ``colbert`` and model weights)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        out_of_scope_retriever("ColBERTv2RetrieverLocal", "loads ColBERT weights in-process")


class ColBERTv2RerankerLocal:
    """Out of scope: DSPy 2.4's in-process ColBERT reranker (needs ``colbert`` and weights)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        out_of_scope_retriever("ColBERTv2RerankerLocal", "loads ColBERT weights in-process")


class Pyserini:
    """Out of scope: DSPy 2.4's Pyserini retriever (needs a JVM and a Lucene index)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        out_of_scope_retriever("Pyserini", "runs Lucene in a JVM in-process")
