"""``GSM8K``: grade-school math word problems, and ``gsm8k_metric`` (DSPy 2.4)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tgispy.datasets._files import read_rows
from tgispy.datasets._hub import load_hf_dataset
from tgispy.primitives import Example

__all__ = ["GSM8K", "gsm8k_metric", "parse_integer_answer"]

_LOCAL_HINT = (
    "GSM8K(data_files={'train': 'gsm8k/train.jsonl', 'test': 'gsm8k/test.jsonl'}) with the "
    "JSON Lines (or Parquet) files of openai/gsm8k's 'main' config"
)


def _parse(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    parsed = []
    for row in rows:
        words = row["answer"].strip().split()
        if len(words) < 2 or words[-2] != "####":
            raise ValueError(f"a GSM8K answer must end with '#### <number>', got {row['answer']!r}")
        parsed.append(
            {
                "question": row["question"],
                "gold_reasoning": " ".join(words[:-2]),
                "answer": str(int(words[-1].replace(",", ""))),
            }
        )
    return parsed


class GSM8K:
    """GSM8K as DSPy 2.4 split it: 200 train and 300 dev examples from the official train split
    (shuffled with seed 0), and the whole official test split (shuffled with seed 0).

    Each example has ``question`` (the input), ``gold_reasoning`` and ``answer`` (the integer
    after ``####``, as a string).

    Args:
        data_files: ``{"train": path, "test": path}`` of local JSON Lines / JSON / Parquet files
            (rows with ``question`` and ``answer``). ``None`` (DSPy 2.4's way): load
            ``gsm8k``/``main`` with the ``datasets`` library from the hub or the local HF cache.

    Example:
        >>> import json, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> row = {"question": "1+1?", "answer": "One plus one.\\n#### 2"}
        >>> _ = (d / "t.jsonl").write_text(json.dumps(row) + "\\n")
        >>> GSM8K(data_files={"train": d / "t.jsonl", "test": d / "t.jsonl"}).test[0].answer
        '2'
    """

    def __init__(self, *, data_files: Mapping[str, str | Path] | None = None) -> None:
        self.do_shuffle = False
        if data_files is not None:
            missing = {"train", "test"} - set(data_files)
            if missing:
                raise ValueError(f"data_files needs {sorted(missing)} too; {_LOCAL_HINT}")
            official_train = _parse(read_rows(data_files["train"])[1])
            official_test = _parse(read_rows(data_files["test"])[1])
        else:
            dataset = load_hf_dataset("gsm8k", "main", local_hint=_LOCAL_HINT)
            official_train = _parse(dataset["train"])
            official_test = _parse(dataset["test"])
        random.Random(0).shuffle(official_train)
        random.Random(0).shuffle(official_test)
        self.train = [Example(**x).with_inputs("question") for x in official_train[:200]]
        self.dev = [Example(**x).with_inputs("question") for x in official_train[200:500]]
        self.test = [Example(**x).with_inputs("question") for x in official_test]


def parse_integer_answer(answer: str, only_first_line: bool = True) -> int:
    """The digits of the last number-bearing token (of the first line), as an int; 0 if none.

    Example:
        >>> parse_integer_answer("So the total is $1,234.50 dollars")
        1234
    """
    try:
        if only_first_line:
            answer = answer.strip().split("\n")[0]
        token = [tok for tok in answer.split() if any(c.isdigit() for c in tok)][-1]
        token = token.split(".")[0]
        return int("".join(c for c in token if c.isdigit()))
    except (ValueError, IndexError):
        return 0


def gsm8k_metric(gold: Any, pred: Any, trace: Any = None) -> bool:
    """Whether the integer answers of ``gold`` and ``pred`` are equal (DSPy 2.4's metric).

    Example:
        >>> gsm8k_metric(Example(answer="42"), Example(answer="The answer is 42."))
        True
    """
    return parse_integer_answer(str(gold.answer)) == parse_integer_answer(str(pred.answer))
