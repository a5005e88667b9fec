"""The embedded BM25 retriever, its corpus formats, and ``serve-rm`` behind ColBERTv2's
protocol, used through ``dspy.ColBERTv2`` over real HTTP on 127.0.0.1."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tgispy as dspy
from tgispy.retrieve import BM25, ColBERTv2, RetrieverError
from tgispy.retrieve._serve import READY_PREFIX

PASSAGES = [
    "Paris is the capital and largest city of France.",
    "Rome is the capital of Italy.",
    "The Seine flows through Paris.",
    "Berlin is the capital of Germany.",
    "Lyon is a city in France known for its cuisine.",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "passages.jsonl"
    lines = [json.dumps({"id": f"d{i}", "text": p}) for i, p in enumerate(PASSAGES)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bm25_ranks_and_answers_like_an_rm(corpus: Path) -> None:
    rm = BM25(corpus, progress=False)
    hits = rm("capital of France", k=3)
    assert [h.long_text for h in hits][:1] == [PASSAGES[0]]
    assert [h.pid for h in hits] == ["d0", "d4", "d1"]
    assert hits[0].score > hits[1].score and abs(sum(h.prob for h in hits) - 1) < 1e-9
    assert rm("zebra unicorn", k=3) == []
    dspy.configure(rm=rm)
    assert dspy.Retrieve(k=1)("Seine river").passages == [PASSAGES[2]]


def test_index_is_saved_and_reused(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index.json.gz"
    first = BM25(corpus, index_path=index, progress=False)
    assert index.exists()

    def no_build(self: BM25, progress: bool) -> None:
        raise AssertionError("the saved index should have been reused")

    monkeypatch.setattr(BM25, "_build", no_build)
    again = BM25(corpus, index_path=index, progress=False)
    assert again("Seine", k=1) == first("Seine", k=1)
    # A changed corpus does not reuse a stale index.
    corpus.write_text(json.dumps({"text": "only one passage"}) + "\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="reused"):
        BM25(corpus, index_path=index, progress=False)


@pytest.mark.parametrize(
    ("name", "content", "first_pid"),
    [
        ("p.json", json.dumps({"passages": ["a b", {"text": "c d", "pid": 7}]}), 0),
        ("p.csv", "id,title,text\n9,Paris,is in France\n10,Rome,is in Italy\n", "9"),
        ("p.tsv", "100\tParis is in France\n101\tRome is in Italy\n", "100"),
    ],
)
def test_corpus_formats(tmp_path: Path, name: str, content: str, first_pid: object) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    rm = BM25(path, progress=False)
    assert rm.passages[0]["pid"] == first_pid
    if name == "p.csv":
        assert rm.passages[0]["text"] == "Paris | is in France"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "does not exist"),
        ("p.jsonl", '{"text": "ok"}\n{"text": broken\n', r"p\.jsonl:2: not valid JSON"),
        ("p.jsonl", '{"title": "no text"}\n', "no passage text"),
        ("p.txt", "hello\n", "unknown corpus format"),
        ("p.jsonl", "\n\n", "no passages"),
        ("p.csv", "a,b\n1,2\n", "no text column"),
    ],
)
def test_bad_corpus_files_say_what_is_wrong(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(dspy.ConfigError, match=message):
        BM25(path, progress=False)


@pytest.fixture
def served(corpus: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tgispy.retrieve._serve", str(corpus), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(READY_PREFIX), (line, proc.stderr and proc.stderr.read())
        yield line[len(READY_PREFIX) :].split()[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes


def test_serve_rm_speaks_colbertv2_for_get_and_post(served: str, corpus: Path) -> None:
    local = BM25(corpus, progress=False)("capital of France", k=3)
    host, port = served.rsplit(":", 1)
    for post in (False, True):
        rm = ColBERTv2(url=host, port=port, post_requests=post)
        remote = rm("capital of France", k=3)
        assert [p.long_text for p in remote] == [p.long_text for p in local]
        assert [p.pid for p in remote] == ["d0", "d4", "d1"]
        assert rm("capital of France", k=2, simplify=True) == [PASSAGES[0], PASSAGES[4]]
    dspy.configure(rm=ColBERTv2(url=f"{served}/api/search"))
    assert dspy.Retrieve(k=1)("Seine").passages == [PASSAGES[2]]


def test_serve_rm_rejects_bad_requests(served: str) -> None:
    import urllib.error
    import urllib.request

    for query in ("?query=x&k=0", "?query=x&k=abc", "?k=3", "?query=x&k=101"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(served + "/api/search" + query, timeout=5)
        assert info.value.code == 400
        assert "error" in json.loads(info.value.read())
    with pytest.raises(RetrieverError, match="HTTP 400"):
        ColBERTv2(url=served, post_requests=True)("", k=3)


def test_unreachable_server_and_out_of_scope_retrievers() -> None:
    with pytest.raises(RetrieverError, match="cannot reach"):
        ColBERTv2(url="http://127.0.0.1", port=9)("q", k=1)
    with pytest.raises(ImportError, match=r"out of scope.*tgispy serve-rm.*ColBERTv2"):
        importlib.import_module("tgispy.retrieve.qdrant_rm")
    with pytest.raises(dspy.ConfigError, match="out of scope"):
        dspy.retrieve.ColBERTv2RetrieverLocal(["p"])
