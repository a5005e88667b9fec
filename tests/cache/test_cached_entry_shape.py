"""A cached value that is JSON of the wrong shape (hand-edited, an older version) is a miss.

End to end: a real client over a scripted TGI on 127.0.0.1 stores a result in a disk cache;
the entry is then rewritten with a wrong shape, and a fresh client over the same directory must
ask the server again and overwrite the entry with a good one.

The check that makes a wrong shape a miss belongs with the code that writes and reads the entry's
shape (``_to_cache`` / ``_from_cache`` in ``tgispy/lm/_tgi.py``): the cache stores any JSON value.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tgispy.cache import DiskCache, LMCache, MemoryCache
from tgispy.lm._tgi import HFClientTGI
from tgispy.testing import Reply, ScriptedTGI

WRONG_SHAPES = [
    pytest.param(["completions"], id="a-list"),
    pytest.param("fine", id="a-string"),
    pytest.param({"choices": [{"text": "stale"}]}, id="another-version"),
    pytest.param({"completions": "stale"}, id="completions-a-string"),
    pytest.param({"completions": [{"text": "stale", "extra": 1}]}, id="unknown-field"),
    pytest.param({"completions": []}, id="no-completion"),
    pytest.param({"completions": [{"text": 5}]}, id="text-a-number"),
    pytest.param({"completions": [{"text": None}]}, id="text-null"),
    pytest.param(
        {"completions": [{"text": "stale", "finish_reason": 3}]},
        id="finish-reason-a-number",
    ),
    pytest.param(
        {"completions": [{"text": "stale", "generated_tokens": "many"}]},
        id="tokens-a-string",
    ),
    pytest.param(
        {"completions": [{"text": "stale"}], "usage": "lots"},
        id="usage-a-string",
    ),
    pytest.param(
        {"completions": [{"text": "stale"}], "usage": {"completion_tokens": "1"}},
        id="usage-count-a-string",
    ),
]


def rows(directory: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(directory / "tgispy-cache.sqlite3")
    try:
        return list(con.execute("SELECT key, value FROM entries"))
    finally:
        con.close()


def rewrite_every_entry(directory: Path, value: Any) -> None:
    con = sqlite3.connect(directory / "tgispy-cache.sqlite3")
    try:
        with con:
            con.execute("UPDATE entries SET value = ?", (json.dumps(value),))
    finally:
        con.close()


def client(server: ScriptedTGI, directory: Path) -> tuple[HFClientTGI, LMCache]:
    cache = LMCache(memory=MemoryCache(), disk=DiskCache(directory))
    lm = HFClientTGI(model="test/model", port=server.port, url="http://127.0.0.1", cache=cache)
    return lm, cache


@pytest.mark.parametrize("wrong", WRONG_SHAPES)
def test_a_wrong_shape_is_a_miss_and_is_overwritten(tmp_path: Path, wrong: Any) -> None:
    directory = tmp_path / "cache"
    with ScriptedTGI([Reply.generate("fresh")]) as server:
        first, cache = client(server, directory)
        assert first("p") == ["fresh"]
        cache.close()
        (entry,) = rows(directory)
        rewrite_every_entry(directory, wrong)

        second, cache = client(server, directory)  # a new process would start like this
        assert second("p") == ["fresh"]
        generates = [r for r in server.requests if r.path == "/generate"]
        assert len(generates) == 2  # the wrong shape was not served
        assert second.history[-1]["cached"] is False
        cache.close()
    assert rows(directory) == [entry]  # and the good result replaced it
