"""``HotPotQA``: multi-hop questions, hard level only (DSPy 2.4's splits)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tgispy.datasets._dataset import Dataset
from tgispy.datasets._files import read_rows
from tgispy.datasets._hub import load_hf_dataset

__all__ = ["HotPotQA"]

_LOCAL_HINT = (
    "HotPotQA(data_files={'train': 'hotpot/train.jsonl', 'validation': 'hotpot/dev.jsonl'}) "
    "with JSON Lines / JSON / Parquet rows of hotpot_qa's 'fullwiki' config (question, answer, "
    "level, supporting_facts, ...)"
)


def _titles(supporting_facts: Any) -> set[str]:
    # The HF rows hold {"title": [...], "sent_id": [...]}; the original files [[title, id], ...].
    if isinstance(supporting_facts, Mapping):
        return set(supporting_facts["title"])
    return {fact[0] for fact in supporting_facts}


class HotPotQA(Dataset):
    """HotPotQA's hard questions, split as DSPy 2.4 did.

    The official train split's hard examples, shuffled with seed 0: the first 75% are ``train``
    (``question``, ``answer``), the rest the unofficial ``dev`` (plus ``gold_titles`` with
    ``keep_details="dev_titles"``); the official validation split is ``test``.

    Args:
        only_hard_examples: must be ``True`` (as in DSPy 2.4).
        keep_details: ``True`` keeps ``id``, ``type``, ``context`` and ``gold_titles`` too;
            ``"dev_titles"`` keeps ``gold_titles`` in dev only; anything else question/answer.
        unofficial_dev: build ``dev`` from the held-out 25% of train.
        data_files: ``{"train": path, "validation": path}`` of local JSON Lines / JSON / Parquet
            files. ``None`` (DSPy 2.4's way): load ``hotpot_qa``/``fullwiki`` with the
            ``datasets`` library from the hub or the local HF cache.
        *args: passed to :class:`Dataset` (seeds and sizes).
        **kwargs: passed to :class:`Dataset` (seeds and sizes).

    Example:
        >>> HotPotQA(train_size=16, data_files=paths)  # doctest: +SKIP
    """

    def __init__(
        self,
        *args: Any,
        only_hard_examples: bool = True,
        keep_details: bool | str = "dev_titles",
        unofficial_dev: bool = True,
        data_files: Mapping[str, str | Path] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not only_hard_examples:
            raise ValueError(
                "Care must be taken when adding support for easy examples. Dev must be all hard "
                "to match official dev, but training can be flexible."
            )
        train_rows, dev_rows = self._load(data_files)
        official_train = []
        for raw in train_rows:
            if raw["level"] != "hard":
                continue
            if keep_details is True:
                keys = ["id", "question", "answer", "type", "supporting_facts", "context"]
            elif keep_details == "dev_titles":
                keys = ["question", "answer", "supporting_facts"]
            else:
                keys = ["question", "answer"]
            example = {k: raw[k] for k in keys}
            if "supporting_facts" in example:
                example["gold_titles"] = _titles(example.pop("supporting_facts"))
            official_train.append(example)
        random.Random(0).shuffle(official_train)
        cut = len(official_train) * 75 // 100
        self._train = official_train[:cut]
        self._dev = official_train[cut:] if unofficial_dev else None
        if keep_details == "dev_titles":
            for example in self._train:
                del example["gold_titles"]
        test = []
        for raw in dev_rows:
            if raw["level"] != "hard":
                raise ValueError("HotPotQA's validation split must hold hard examples only")
            example = {k: raw[k] for k in ["id", "question", "answer", "type", "supporting_facts"]}
            example["gold_titles"] = _titles(example.pop("supporting_facts"))
            test.append(example)
        self._test = test

    @staticmethod
    def _load(
        data_files: Mapping[str, str | Path] | None,
    ) -> tuple[Iterable[Mapping[str, Any]], Iterable[Mapping[str, Any]]]:
        if data_files is not None:
            missing = {"train", "validation"} - set(data_files)
            if missing:
                raise ValueError(f"data_files needs {sorted(missing)} too; {_LOCAL_HINT}")
            return read_rows(data_files["train"])[1], read_rows(data_files["validation"])[1]
        train = load_hf_dataset(
            "hotpot_qa", "fullwiki", split="train", trust_remote_code=True, local_hint=_LOCAL_HINT
        )
        dev = load_hf_dataset(
            "hotpot_qa",
            "fullwiki",
            split="validation",
            trust_remote_code=True,
            local_hint=_LOCAL_HINT,
        )
        return train, dev
