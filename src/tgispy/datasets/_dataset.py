"""``Dataset``: train/dev/test splits, shuffled and sized by seed (DSPy 2.4's base class)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tgispy.primitives import Example

__all__ = ["Dataset", "dotdict"]


class dotdict(dict[str, Any]):
    """A dict whose keys are also attributes (DSPy's ``dsp.utils.dotdict``).

    Example:
        >>> d = dotdict(train_size=16)
        >>> d.train_size
        16
    """

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{key}'"
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        del self[key]


class Dataset:
    """Base class of datasets: subclasses set ``_train``, ``_dev`` and ``_test`` (lists of dicts).

    ``train``, ``dev`` and ``test`` are those lists shuffled with ``random.Random(seed)`` (when
    ``do_shuffle``), cut to ``*_size`` and turned into :class:`~tgispy.Example` objects with
    ``input_keys`` marked; ``(seed=s, size=N)`` is always a prefix of ``(seed=s, size=M)``, M > N.

    Args:
        train_seed: shuffle seed of the train split.
        train_size: examples kept in the train split (``None``: all).
        eval_seed: shuffle seed of the dev and test splits.
        dev_size: examples kept in the dev split.
        test_size: examples kept in the test split.
        input_keys: the input fields of every example (``with_inputs(*input_keys)``).

    Example:
        >>> class Tiny(Dataset):
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self._train = [{"q": "1+1?", "a": "2"}, {"q": "2+2?", "a": "4"}]
        >>> Tiny(train_size=1, input_keys=["q"]).train[0].inputs().keys()
        ['q']
    """

    _train: Iterable[Mapping[str, Any]]
    _dev: Iterable[Mapping[str, Any]] | None
    _test: Iterable[Mapping[str, Any]] | None

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        train_seed: int = 0,
        train_size: int | None = None,
        eval_seed: int = 0,
        dev_size: int | None = None,
        test_size: int | None = None,
        input_keys: Sequence[str] = (),
    ) -> None:
        self.train_size = train_size
        self.train_seed = train_seed
        self.dev_size = dev_size
        self.dev_seed = eval_seed
        self.test_size = test_size
        self.test_seed = eval_seed
        self.input_keys = list(input_keys)
        self.do_shuffle = True
        self.name = type(self).__name__

    def reset_seeds(
        self,
        train_seed: int | None = None,
        train_size: int | None = None,
        eval_seed: int | None = None,
        dev_size: int | None = None,
        test_size: int | None = None,
        **_ignored: Any,
    ) -> None:
        """Change seeds or sizes; the splits are rebuilt on next access."""
        self.train_size = train_size if train_size is not None else self.train_size
        self.train_seed = train_seed if train_seed is not None else self.train_seed
        self.dev_size = dev_size if dev_size is not None else self.dev_size
        self.dev_seed = eval_seed if eval_seed is not None else self.dev_seed
        self.test_size = test_size if test_size is not None else self.test_size
        self.test_seed = eval_seed if eval_seed is not None else self.test_seed
        for cached in ("_train_", "_dev_", "_test_"):
            self.__dict__.pop(cached, None)

    @property
    def train(self) -> list[Example]:
        if "_train_" not in self.__dict__:
            self._train_ = self._shuffle_and_sample(
                "train", self._raw("_train"), self.train_size, self.train_seed
            )
        return self._train_

    @property
    def dev(self) -> list[Example]:
        if "_dev_" not in self.__dict__:
            self._dev_ = self._shuffle_and_sample(
                "dev", self._raw("_dev"), self.dev_size, self.dev_seed
            )
        return self._dev_

    @property
    def test(self) -> list[Example]:
        if "_test_" not in self.__dict__:
            self._test_ = self._shuffle_and_sample(
                "test", self._raw("_test"), self.test_size, self.test_seed
            )
        return self._test_

    def _raw(self, attribute: str) -> Iterable[Mapping[str, Any]]:
        data = self.__dict__.get(attribute)
        if data is None:
            split = attribute.strip("_")
            raise AttributeError(f"{self.name} has no {split} split")
        return data  # type: ignore[no-any-return]

    def _shuffle_and_sample(
        self, split: str, data: Iterable[Mapping[str, Any]], size: int | None, seed: int = 0
    ) -> list[Example]:
        rows = list(data)
        if self.do_shuffle:
            random.Random(seed).shuffle(rows)
        output = []
        for row in rows[:size]:
            example = Example(**row, dspy_uuid=str(uuid.uuid4()), dspy_split=split)
            if self.input_keys:
                example = example.with_inputs(*self.input_keys)
            output.append(example)
        return output

    @classmethod
    def prepare_by_seed(
        cls,
        train_seeds: Sequence[int] = (1, 2, 3, 4, 5),
        train_size: int = 16,
        dev_size: int = 1000,
        divide_eval_per_seed: bool = True,
        eval_seed: int = 2023,
        **kwargs: Any,
    ) -> dotdict:
        """Train sets for several seeds and matching slices of one dev set (DSPy 2.4)."""
        data_args = dotdict(
            train_size=train_size, eval_seed=eval_seed, dev_size=dev_size, test_size=0, **kwargs
        )
        dataset = cls(**data_args)
        eval_set = dataset.dev
        eval_sets: list[list[Example]] = []
        train_sets: list[list[Example]] = []
        examples_per_seed = dev_size // len(train_seeds) if divide_eval_per_seed else dev_size
        eval_offset = 0
        for train_seed in train_seeds:
            data_args.train_seed = train_seed
            dataset.reset_seeds(**data_args)
            eval_sets.append(eval_set[eval_offset : eval_offset + examples_per_seed])
            train_sets.append(dataset.train)
            if len(eval_sets[-1]) != examples_per_seed or len(train_sets[-1]) != train_size:
                raise ValueError(
                    f"{cls.__name__} has too few examples for train_size={train_size} and "
                    f"dev_size={dev_size} over {len(train_seeds)} seeds"
                )
            if divide_eval_per_seed:
                eval_offset += examples_per_seed
        return dotdict(train_sets=train_sets, eval_sets=eval_sets)
