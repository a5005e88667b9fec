"""``DataLoader``: examples from the HF hub, local files and DataFrames (DSPy 2.4's API)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tgispy._settings import current as current_settings
from tgispy.datasets._dataset import Dataset
from tgispy.datasets._files import read_csv, read_json, read_parquet
from tgispy.datasets._hub import load_hf_dataset
from tgispy.primitives import Example

__all__ = ["DataLoader"]


def _examples(
    rows: Iterable[Mapping[str, Any]], fields: Sequence[str] | None, input_keys: Sequence[str]
) -> list[Example]:
    return [
        Example({field: row[field] for field in (fields or list(row.keys()))}).with_inputs(
            *input_keys
        )
        for row in rows
    ]


class DataLoader(Dataset):
    """Turn rows into :class:`~tgispy.Example` lists, keeping ``fields`` and marking ``input_keys``.

    ``from_csv``, ``from_json`` (a JSON array or JSON Lines) and ``from_parquet`` read local files
    directly (Parquet needs ``pyarrow``); ``from_huggingface`` goes through the ``datasets``
    library (``pip install 'tgispy[datasets]'``) and works where the hub or the local HF cache
    has the data.

    Example:
        >>> dl = DataLoader()
        >>> rows = dl.train_test_split([Example(q=str(i)) for i in range(4)], train_size=3,
        ...                            random_state=0)
        >>> len(rows["train"]), len(rows["test"])
        (3, 1)
    """

    def __init__(self) -> None:
        pass  # DSPy 2.4's DataLoader keeps no dataset state

    def from_huggingface(
        self,
        dataset_name: str,
        *args: Any,
        input_keys: tuple[str, ...] = (),
        fields: tuple[str, ...] | None = None,
        **kwargs: Any,
    ) -> dict[str, list[Example]] | list[Example]:
        """``datasets.load_dataset(dataset_name, *args, **kwargs)`` as examples.

        Returns ``{split: examples}`` for a dataset dict, a list for a single split
        (``split="train"``), and ``{split: examples}`` for a list of splits.
        """
        if fields and not isinstance(fields, tuple):
            raise ValueError("Invalid fields provided. Please provide a tuple of fields.")
        if not isinstance(input_keys, tuple):
            raise ValueError("Invalid input keys provided. Please provide a tuple of input keys.")
        dataset = load_hf_dataset(
            dataset_name,
            *args,
            local_hint=(
                "download the split as CSV/JSON Lines/Parquet elsewhere and call "
                "DataLoader().from_csv(path) / from_json(path) / from_parquet(path)"
            ),
            **kwargs,
        )
        if isinstance(dataset, list) and isinstance(kwargs.get("split"), list):
            dataset = {name: dataset[idx] for idx, name in enumerate(kwargs["split"])}
        if isinstance(dataset, Mapping) or callable(getattr(dataset, "keys", None)):
            return {
                name: _examples(dataset[name], fields, input_keys) for name in list(dataset.keys())
            }
        return _examples(dataset, fields, input_keys)

    def from_csv(
        self,
        file_path: str | Path,
        fields: list[str] | None = None,
        input_keys: tuple[str, ...] = (),
    ) -> list[Example]:
        """Examples from a CSV file with a header row (numeric columns become numbers)."""
        columns, rows = read_csv(file_path)
        return _examples(rows, fields or columns, input_keys)

    def from_json(
        self,
        file_path: str | Path,
        fields: list[str] | None = None,
        input_keys: tuple[str, ...] = (),
    ) -> list[Example]:
        """Examples from a JSON array of objects or a JSON Lines file."""
        columns, rows = read_json(file_path)
        return _examples(rows, fields or columns, input_keys)

    def from_parquet(
        self,
        file_path: str | Path,
        fields: list[str] | None = None,
        input_keys: tuple[str, ...] = (),
    ) -> list[Example]:
        """Examples from a Parquet file (needs ``pyarrow``: ``pip install 'tgispy[datasets]'``)."""
        columns, rows = read_parquet(file_path)
        return _examples(rows, fields or columns, input_keys)

    def from_pandas(
        self, df: Any, fields: list[str] | None = None, input_keys: tuple[str, ...] = ()
    ) -> list[Example]:
        """Examples from the rows of a pandas ``DataFrame``."""
        if fields is None:
            fields = list(df.columns)
        return [
            Example({field: row[field] for field in fields}).with_inputs(*input_keys)
            for _, row in df.iterrows()
        ]

    def from_rm(self, num_samples: int, fields: list[str], input_keys: list[str]) -> list[Example]:
        """Examples from the configured retriever's ``get_objects`` (DSPy 2.4)."""
        rm = current_settings().get("rm")
        if rm is None:
            raise ValueError(
                "Retrieval module not found. Please set a retrieval module using "
                "`dspy.settings.configure`."
            )
        get_objects = getattr(rm, "get_objects", None)
        if get_objects is None:
            raise ValueError(
                "Retrieval module does not support `get_objects`. Please use a different "
                "retrieval module."
            )
        return _examples(get_objects(num_samples=num_samples, fields=fields), fields, input_keys)

    def sample(self, dataset: list[Example], n: int, *args: Any, **kwargs: Any) -> list[Example]:
        """``n`` examples drawn with Python's global ``random.sample`` (as DSPy 2.4)."""
        if not isinstance(dataset, list):
            raise ValueError(
                f"Invalid dataset provided of type {type(dataset)}. Please provide a list of "
                "examples."
            )
        return random.sample(dataset, n, *args, **kwargs)

    def train_test_split(
        self,
        dataset: list[Example],
        train_size: int | float = 0.75,
        test_size: int | float | None = None,
        random_state: int | None = None,
    ) -> dict[str, list[Example]]:
        """Shuffle and split into ``{"train": [...], "test": [...]}``.

        Sizes are counts (int) or fractions (float in (0, 1)). With ``random_state`` the order is
        DSPy 2.4's (``random.seed(random_state)`` then ``random.shuffle``), from a private
        generator: Python's global one is left alone.
        """
        rng: Any = random if random_state is None else random.Random(random_state)
        shuffled = list(dataset)
        rng.shuffle(shuffled)
        train_end = _split_size(train_size, len(shuffled), "train_size")
        if test_size is not None:
            test_end = _split_size(test_size, len(shuffled), "test_size")
            if train_end + test_end > len(shuffled):
                raise ValueError(
                    "train_size + test_size cannot exceed the total number of samples."
                )
        else:
            test_end = len(shuffled) - train_end
        return {
            "train": shuffled[:train_end],
            "test": shuffled[train_end : train_end + test_end],
        }


def _split_size(size: Any, total: int, name: str) -> int:
    if isinstance(size, float) and 0 < size < 1:
        return int(total * size)
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    raise ValueError(f"Invalid {name}. Please provide a float between 0 and 1 or an int.")
