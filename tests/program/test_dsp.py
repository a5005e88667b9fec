"""``tgispy.dsp``: the ``dsp`` helpers DSPy 2.4 programs import, with 2.4.17's results."""

from __future__ import annotations

import copy
import pickle

import pytest

import tgispy
import tgispy.dsp as dsp
from tgispy.dsp.utils import (
    EM,
    F1,
    DPR_normalize,
    HotPotF1,
    deduplicate,
    dotdict,
    normalize_text,
)


def test_settings_is_tgispy_settings() -> None:
    assert dsp.settings is tgispy.settings
    assert dsp.utils.settings is tgispy.settings
    dsp.settings.configure(rm="x")
    assert tgispy.settings.rm == "x"


def test_dotdict() -> None:
    d = dotdict(long_text="Paris", score=1.0)
    assert d.long_text == "Paris" and d["score"] == 1.0
    d.pid = 3
    assert d == {"long_text": "Paris", "score": 1.0, "pid": 3}
    del d.pid
    with pytest.raises(AttributeError, match="no attribute 'pid'"):
        _ = d.pid
    deep = copy.deepcopy(dotdict(a=[1]))
    assert type(deep) is dotdict and deep.a == [1]
    assert pickle.loads(pickle.dumps(d)) == d


def test_deduplicate_keeps_first_occurrences_in_order() -> None:
    assert deduplicate(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   apple, a day ", "apple day"),
        ("Café", "cafe\u0301"),  # NFD keeps the combining accent
        ("theater", "theater"),
    ],
)
def test_normalize_text(text: str, normalized: str) -> None:
    assert normalize_text(text) == normalized


def test_em_and_f1() -> None:
    assert EM("the Paris", ["paris", "rome"]) is True
    assert EM("Paris France", ["paris"]) is False
    assert F1("Paris France", ["paris"]) == pytest.approx(2 / 3)
    assert F1("", ["paris"]) == 0
    assert HotPotF1("yes", ["no"]) == 0
    with pytest.raises(TypeError):
        EM("x", "x")  # type: ignore[arg-type]


def test_dpr_normalize_matches_dprs_regex_tokenizer() -> None:
    regex = pytest.importorskip("regex")
    pattern = regex.compile(
        r"([\p{L}\p{N}\p{M}]+)|([^\p{Z}\p{C}])",
        flags=regex.IGNORECASE + regex.UNICODE + regex.MULTILINE,
    )
    import unicodedata

    for text in [
        "Hello, world!",
        "Café au lait — 3.14 ¿qué?",
        "tab\tnew\nline\u200bzero-width",
        "東京は日本の首都です。",
        "e\u0301 and \u00e9",
    ]:
        expected = [m.group().lower() for m in pattern.finditer(unicodedata.normalize("NFD", text))]
        assert DPR_normalize(text) == expected


def test_answer_and_passage_match() -> None:
    assert dsp.answer_match("The Eiffel Tower", ["eiffel tower"])
    assert not dsp.answer_match("Eiffel", ["eiffel tower"])
    assert dsp.answer_match("Eiffel", ["eiffel tower"], frac=0.5)
    assert dsp.passage_match(["It stands in Paris, France."], ["paris"])
    assert not dsp.passage_match(["It stands in Parisville."], ["paris"])


def test_retrieve_uses_the_configured_rm() -> None:
    calls = []

    def rm(query: str, k: int) -> list[dotdict]:
        calls.append((query, k))
        return [dotdict(long_text=f"{query} {i}", prob=1.0 / (i + 1)) for i in range(k)]

    with pytest.raises(tgispy.ConfigError, match="No RM is loaded"):
        dsp.retrieve("q", k=2)
    with tgispy.context(rm=rm):
        assert dsp.retrieve("q", k=2) == ["q 0", "q 1"]
        # ties go to the larger text, as sorted(reverse=True) did in DSPy 2.4
        assert dsp.retrieveEnsemble(["a", "", "b"], k=2) == ["b 0", "a 0"]
    assert calls == [("q", 2), ("a", 6), ("b", 6)]


def test_passages2text_is_the_template_formatter() -> None:
    assert dsp.passages2text(["a", "b"]) == "[1] «a»\n[2] «b»"
