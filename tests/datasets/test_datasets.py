"""dspy.datasets: splits, loaders over small local files, DSPy 2.4.17's orders and metrics.

Expected orders and values were read from dspy-ai 2.4.17 on the same inputs.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import tgispy as dspy
from tgispy.datasets import GSM8K, Colors, DataLoader, Dataset, HotPotQA, gsm8k_metric
from tgispy.datasets._gsm8k import parse_integer_answer
from tgispy.errors import ConfigError


def test_import_tgispy_loads_no_dataset_extra() -> None:
    code = (
        "import sys, tgispy, tgispy.datasets; "
        "print(sorted(m for m in ('pandas', 'datasets', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dspy_datasets_namespace() -> None:
    assert dspy.datasets.DataLoader is DataLoader
    assert {"Colors", "DataLoader", "Dataset", "HotPotQA"} <= set(dspy.datasets.__all__)


def test_colors_splits_match_dspy_2_4_17() -> None:
    colors = Colors()
    assert (len(colors.train), len(colors.dev)) == (82, 55)
    assert [x.color for x in colors.train[:5]] == [
        "hot pink",
        "dark turquoise",
        "orchid",
        "peach puff",
        "khaki",
    ]
    assert [x.color for x in colors.dev[:3]] == ["light slate gray", "sea green", "dim gray"]
    with pytest.raises(AttributeError, match="no test split"):
        _ = colors.test


class _Numbers(Dataset):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._train = [{"q": str(i), "a": str(i * i)} for i in range(20)]
        self._dev = [{"q": str(i), "a": str(i * i)} for i in range(20, 30)]
        self._test = [{"q": "t", "a": "t"}]


def test_dataset_seed_size_prefix_and_input_keys() -> None:
    small = _Numbers(train_seed=3, train_size=4, input_keys=["q"])
    large = _Numbers(train_seed=3, train_size=10, input_keys=["q"])
    assert [x.q for x in small.train] == [x.q for x in large.train][:4]
    expected = [{"q": str(i), "a": str(i * i)} for i in range(20)]
    random.Random(3).shuffle(expected)
    assert [dict(x.items()) for x in large.train] == expected[:10]
    assert small.train[0].inputs().keys() == ["q"]
    assert small.train[0].dspy_split == "train" and small.dev[0].dspy_split == "dev"
    assert small.train is small.train  # built once
    small.reset_seeds(train_seed=4)
    reshuffled = [x.q for x in small.train]
    assert len(reshuffled) == 4 and reshuffled != [x.q for x in large.train][:4]


def test_prepare_by_seed_slices_one_dev_set() -> None:
    out = _Numbers.prepare_by_seed(train_seeds=[1, 2], train_size=3, dev_size=10)
    assert [len(s) for s in out.train_sets] == [3, 3]
    assert [len(s) for s in out.eval_sets] == [5, 5]
    assert {x.q for x in out.eval_sets[0]}.isdisjoint({x.q for x in out.eval_sets[1]})
    with pytest.raises(ValueError, match="too few"):
        _Numbers.prepare_by_seed(train_seeds=[1], train_size=50, dev_size=10)


def test_from_csv_infers_numbers_like_the_datasets_library(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('question,answer,n,x\nWhat is 2+2?,4,1,1.5\n"Hi, there",yes,2,\n')
    examples = DataLoader().from_csv(path, input_keys=("question",))
    # dspy-ai 2.4.17 (datasets' CSV loader) gave exactly these records.
    assert [e.toDict() for e in examples] == [
        {"question": "What is 2+2?", "answer": "4", "n": 1, "x": 1.5},
        {"question": "Hi, there", "answer": "yes", "n": 2, "x": None},
    ]
    assert examples[1].inputs().toDict() == {"question": "Hi, there"}
    only = DataLoader().from_csv(str(path), fields=["answer"])
    assert [e.toDict() for e in only] == [{"answer": "4"}, {"answer": "yes"}]


def test_from_json_reads_json_lines_and_arrays(tmp_path: Path) -> None:
    rows = [{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}]
    lines = tmp_path / "a.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows))
    array = tmp_path / "a.json"
    array.write_text(json.dumps(rows))
    for path in (lines, array):
        examples = DataLoader().from_json(path, fields=["question"], input_keys=("question",))
        assert [e.toDict() for e in examples] == [{"question": "q1"}, {"question": "q2"}]
    assert DataLoader().from_json(lines)[1].answer == "a2"


def test_from_parquet_and_from_pandas(tmp_path: Path) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "a.parquet"
    pq.write_table(pyarrow.table({"q": ["x", "y"], "n": [1, 2]}), str(path))
    examples = DataLoader().from_parquet(path, input_keys=("q",))
    assert [e.toDict() for e in examples] == [{"q": "x", "n": 1}, {"q": "y", "n": 2}]
    assert examples[0].inputs().toDict() == {"q": "x"}
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"q": ["x", "y"], "a": ["1", "2"]})
    assert [e.toDict() for e in DataLoader().from_pandas(frame, input_keys=("q",))] == [
        {"q": "x", "a": "1"},
        {"q": "y", "a": "2"},
    ]


def test_from_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"pip install 'tgispy\[datasets\]'"):
        DataLoader().from_parquet(tmp_path / "a.parquet")


def test_train_test_split_matches_dspy_2_4_17_and_keeps_global_random() -> None:
    data = [dspy.Example(q=str(i)) for i in range(10)]
    state = random.getstate()
    split = DataLoader().train_test_split(data, train_size=0.7, random_state=3)
    assert random.getstate() == state
    assert [x.q for x in split["train"]] == ["1", "5", "6", "0", "9", "4", "7"]
    assert [x.q for x in split["test"]] == ["2", "8", "3"]
    sized = DataLoader().train_test_split(data, train_size=2, test_size=0.5, random_state=1)
    assert (len(sized["train"]), len(sized["test"])) == (2, 5)
    with pytest.raises(ValueError, match="cannot exceed"):
        DataLoader().train_test_split(data, train_size=8, test_size=3)
    with pytest.raises(ValueError, match="Invalid train_size"):
        DataLoader().train_test_split(data, train_size=1.5)


def test_sample_draws_from_a_list() -> None:
    data = [dspy.Example(q=str(i)) for i in range(10)]
    drawn = DataLoader().sample(data, 3)
    assert len(drawn) == 3 and all(x in data for x in drawn)
    with pytest.raises(ValueError, match="list of examples"):
        DataLoader().sample(tuple(data), 3)  # type: ignore[arg-type]


def _hub_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)


def test_hub_loaders_without_datasets_say_how_to_use_local_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hub_blocked(monkeypatch)
    with pytest.raises(ImportError, match=r"tgispy\[datasets\].*from_csv"):
        DataLoader().from_huggingface("squad", split="train")
    with pytest.raises(ImportError, match="data_files="):
        GSM8K()
    with pytest.raises(ImportError, match="data_files="):
        HotPotQA()


def test_hub_loader_offline_error_names_local_files(monkeypatch: pytest.MonkeyPatch) -> None:
    class _FakeDatasets:
        @staticmethod
        def load_dataset(*args: object, **kwargs: object) -> object:
            raise ConnectionError("Couldn't reach 'gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setitem(sys.modules, "datasets", _FakeDatasets)
    with pytest.raises(ConfigError, match=r"neither the HuggingFace hub.*data_files="):
        GSM8K()


def _gsm8k_rows(count: int, offset: int = 0) -> list[dict[str, str]]:
    return [
        {"question": f"What is {i} + 1000?", "answer": f"Add them.\n#### {i + 1000:,}"}
        for i in range(offset, offset + count)
    ]


def test_gsm8k_from_local_files(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in _gsm8k_rows(520)))
    test = tmp_path / "test.json"
    test.write_text(json.dumps(_gsm8k_rows(7, offset=5000)))
    data = GSM8K(data_files={"train": train, "test": test})
    assert (len(data.train), len(data.dev), len(data.test)) == (200, 300, 7)
    shuffled = _gsm8k_rows(520)
    random.Random(0).shuffle(shuffled)
    first = data.train[0]
    assert first.question == shuffled[0]["question"]
    assert first.answer == str(int(shuffled[0]["answer"].split()[-1].replace(",", "")))
    assert first.gold_reasoning == "Add them."
    assert first.inputs().keys() == ["question"]
    assert data.dev[0].question == shuffled[200]["question"]
    with pytest.raises(ValueError, match="'test'"):
        GSM8K(data_files={"train": train})


def test_gsm8k_metric_and_integer_parsing() -> None:
    # Values from dspy-ai 2.4.17's parse_integer_answer.
    assert [parse_integer_answer(s) for s in ["1,000 apples", "x", "12.5 and 3", "abc\n42"]] == [
        1000,
        0,
        3,
        0,
    ]
    gold = dspy.Example(question="q", answer="1234")
    assert gsm8k_metric(gold, dspy.Prediction(answer="So it is 1,234."))
    assert not gsm8k_metric(gold, dspy.Prediction(answer="1233"))


def _hotpot_row(i: int, level: str = "hard") -> dict[str, object]:
    return {
        "id": f"id{i}",
        "question": f"Q{i}?",
        "answer": f"A{i}",
        "type": "bridge",
        "level": level,
        "supporting_facts": {"title": [f"T{i}", f"U{i}", f"T{i}"], "sent_id": [0, 1, 2]},
        "context": {"title": [f"T{i}"], "sentences": [["s"]]},
    }


def test_hotpotqa_from_local_files(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    rows = [_hotpot_row(i, "hard" if i % 4 else "easy") for i in range(40)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dev = tmp_path / "dev.jsonl"
    dev_row = _hotpot_row(99)
    dev_row["supporting_facts"] = [["X", 0], ["Y", 3]]  # the original files' shape
    dev.write_text(json.dumps(dev_row) + "\n")
    data = HotPotQA(
        train_seed=1, train_size=5, eval_seed=2023, dev_size=3, input_keys=["question"],
        data_files={"train": train, "validation": dev},
    )  # fmt: skip
    hard = [
        {"question": r["question"], "answer": r["answer"]} for r in rows if r["level"] == "hard"
    ]
    random.Random(0).shuffle(hard)
    assert len(hard) == 30
    expected_train = hard[:22]
    random.Random(1).shuffle(expected_train)
    assert [dict(x.items()) for x in data.train] == expected_train[:5]
    assert len(data.train) == 5 and set(data.train[0].keys()) == {"question", "answer"}
    assert len(data.dev) == 3 and data.dev[0].gold_titles == {
        f"T{data.dev[0].question[1:-1]}",
        f"U{data.dev[0].question[1:-1]}",
    }
    assert data.test[0].gold_titles == {"X", "Y"} and data.test[0].id == "id99"
    with pytest.raises(ValueError, match="hard"):
        HotPotQA(only_hard_examples=False, data_files={"train": train, "validation": dev})
