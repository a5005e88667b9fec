"""Results files (pure parts and the append-only writer), example ids, shards, error kinds."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import tgispy as dspy
from tgispy.errors import (
    AllReplicasFailedError,
    ConfigError,
    ConnectError,
    ContextWindowExceededError,
    GenerationError,
    NoHealthyReplicaError,
    OverloadedError,
    ParseError,
    ServerError,
    TGITimeoutError,
    UnavailableError,
    ValidationError,
)
from tgispy.evaluate import ErrorInfo, error_kind
from tgispy.evaluate._records import (
    ResultsWriter,
    example_ids,
    parse_shard,
    read_results,
    shard_indices,
)


def ex(**fields: object) -> dspy.Example:
    return dspy.Example(**fields).with_inputs("question")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectError("refused"), "infra"),
        (TGITimeoutError("first byte"), "infra"),
        (UnavailableError("503", status=503), "infra"),
        (OverloadedError("429", status=429), "infra"),
        (NoHealthyReplicaError("all ejected"), "infra"),
        (AllReplicasFailedError("out of attempts"), "infra"),
        (ServerError("boom", status=500), "infra"),
        (ServerError("unauthorized", status=401), "infra"),
        (TimeoutError(), "infra"),
        (ConnectionResetError(), "infra"),
        (ValidationError("bad input", status=422), "program"),
        (ContextWindowExceededError("too long", status=422), "program"),
        (GenerationError("model failed", status=424), "program"),
        (ServerError("bad request", status=400), "program"),
        (ParseError("no answer field"), "program"),
        (ValueError("user code"), "program"),
        (ConfigError("bad argument"), "program"),
        (ExceptionGroup("two", [ConnectError("a"), TimeoutError()]), "infra"),
        (ExceptionGroup("mixed", [ConnectError("a"), ValueError()]), "program"),
    ],
)
def test_error_kind_follows_the_error_tree(exc: BaseException, kind: str) -> None:
    assert error_kind(exc) == kind
    assert ErrorInfo.from_exception(exc).kind == kind


def test_error_kind_follows_raise_from_but_not_implicit_context() -> None:
    def wrapped(explicit: bool) -> BaseException:
        try:
            try:
                raise ConnectError("refused")
            except ConnectError as exc:
                if explicit:
                    raise RuntimeError("my retriever failed") from exc
                raise RuntimeError("unrelated bug while handling")  # noqa: B904
        except RuntimeError as err:
            return err
        raise AssertionError

    assert error_kind(wrapped(explicit=True)) == "infra"
    assert error_kind(wrapped(explicit=False)) == "program"


def test_error_info_round_trips_through_a_results_line() -> None:
    info = ErrorInfo.from_exception(UnavailableError("down", status=503, replica="http://r:1"))
    again = ErrorInfo.from_dict(json.loads(json.dumps(info.as_dict())))
    assert again == info and again.infra
    assert pickle.loads(pickle.dumps(info)) == info


def test_ids_hash_the_inputs_only_and_number_repeats() -> None:
    a = ex(question="2+2?", answer="4")
    b = ex(question="2+2?", answer="four")  # same inputs, other label: same example
    c = ex(question="3+3?", answer="6")
    ids = example_ids([a, b, c, a])
    assert ids[1] == ids[0] + "#1" and ids[3] == ids[0] + "#2"
    assert ids[2] not in ids[:2] and len(set(ids)) == 4
    assert example_ids([c, a]) == [ids[2], ids[0]]  # stable: depends on content, not position


def test_ids_from_a_named_field_must_exist_and_be_unique() -> None:
    assert example_ids([ex(id=1, question="q"), ex(id="x", question="q")], "id") == ["1", "x"]
    with pytest.raises(ConfigError, match="no 'id' field"):
        example_ids([ex(question="q")], "id")
    with pytest.raises(ConfigError, match="share the id '1'"):
        example_ids([ex(id=1, question="a"), ex(id=1, question="b")], "id")


def test_shards_cover_every_position_exactly_once() -> None:
    for count in (0, 1, 7, 10):
        for n in (1, 2, 3, 4):
            covered = sorted(i for k in range(n) for i in shard_indices(count, (k, n)))
            assert covered == list(range(count))
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_a_torn_last_line_is_ignored_and_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path, {"metric": "em", "total": 3}) as out:
        out.write({"id": "a", "index": 0, "status": "ok", "score": True})
        out.write({"id": "b", "index": 1, "status": "infra_error", "score": 0.0})
    whole = path.read_bytes()
    # A kill -9 in the middle of a write leaves part of a line (here: all but its newline too).
    for torn in (b'{"id": "c", "ind', b'{"id": "c", "index": 2, "status": "ok", "score": true}'):
        path.write_bytes(whole + torn)
        found = read_results(path)
        assert found.torn and list(found.records) == ["a", "b"]
        assert found.header == {"tgispy_results": 1, "metric": "em", "total": 3}

    with ResultsWriter(path, {"metric": "em", "total": 3, "resumed": True}) as out:
        out.write({"id": "b", "index": 1, "status": "ok", "score": False})
    text = path.read_text()
    assert '"id": "c"' not in text and text.endswith("\n")
    found = read_results(path)
    assert not found.torn and found.lines == 3
    assert found.records["b"]["status"] == "ok"  # the last line for an id wins
    assert len(found.headers) == 2 and found.header["resumed"] is True


def test_a_file_that_is_not_a_results_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('not json\n{"id": "a"}\n')
    with pytest.raises(ConfigError, match=r"data\.jsonl:1: not a results line"):
        read_results(path)
    path.write_text('{"question": "q"}\n')
    with pytest.raises(ConfigError, match="without an 'id'"):
        read_results(path)
    assert read_results(tmp_path / "missing.jsonl").records == {}
