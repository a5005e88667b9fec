"""Run a tgispy program over a Ray Data dataset: :func:`map_program`.

Install with ``pip install 'tgispy[ray]'``. Each Ray worker (an actor) builds its own fleet
client once and runs a batch's examples on the async client, at most ``max_in_flight`` at a
time, so ``concurrency`` workers put at most ``concurrency * max_in_flight`` requests on the
fleet. Failures are rows, not failed tasks: each row carries ``error`` and ``error_kind``
(``"program"`` or ``"infra"``, see :func:`tgispy.evaluate.error_kind`).

Example:
    >>> import functools, ray
    >>> import tgispy as dspy
    >>> from tgispy.integrations.ray import map_program
    >>> ds = ray.data.from_items([{"question": "Capital of France?"}])
    >>> lm = functools.partial(dspy.HFClientTGI, model="m", port=None,
    ...                        url=["http://10.0.0.1:8080", "http://10.0.0.2:8080"])
    >>> out = map_program(ds, dspy.Predict("question -> answer"), lm=lm, inputs=["question"])
    >>> out.take_all()  # doctest: +SKIP
    [{'question': 'Capital of France?', 'answer': 'Paris', 'error': None, ...}]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tgispy.errors import ConfigError
from tgispy.integrations._ray_map import OUTPUT_COLUMNS, ProgramBatchMapper

INSTALL_HINT = "pip install 'tgispy[ray]'"

try:
    import ray.data  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised where Ray is missing
    raise ImportError(
        f"tgispy.integrations.ray needs Ray Data; install it with: {INSTALL_HINT}"
    ) from exc

if TYPE_CHECKING:
    from ray.data import Dataset

__all__ = ["OUTPUT_COLUMNS", "map_program"]


def map_program(
    dataset: Dataset,
    program: Any,
    *,
    lm: Callable[[], Any],
    inputs: Sequence[str],
    metric: Callable[..., Any] | None = None,
    max_in_flight: int = 16,
    concurrency: int = 1,
    batch_size: int = 64,
    **map_batches_kwargs: Any,
) -> Dataset:
    """Run ``program`` on every row of ``dataset``; a dataset of inputs, predictions and errors.

    Args:
        dataset: rows with (at least) the ``inputs`` columns.
        program: the program (a module, pickled to each worker) or its class.
        lm: a picklable zero-argument callable that builds the LM in each worker, e.g.
            ``functools.partial(tgispy.HFClientTGI, model=..., port=None, url=[...])``.
        inputs: the columns that are the program's input fields.
        metric: optional ``metric(example, prediction)`` (labels come from the row's other
            columns); adds a ``score`` column.
        max_in_flight: examples in flight per worker.
        concurrency: Ray actors (workers).
        batch_size: rows per batch handed to a worker.
        **map_batches_kwargs: passed to :meth:`ray.data.Dataset.map_batches` (``num_cpus``, ...).

    Returns:
        A lazy dataset: the input columns, the prediction's fields (``pred_<name>`` when a field
        clashes with a column), ``score`` with a metric, ``error``, ``error_kind`` and
        ``latency_s``.

    Raises:
        ConfigError: bad arguments (before anything runs).
    """
    if not callable(lm):
        raise ConfigError(
            "map_program needs lm=, a zero-argument callable that builds the LM in each worker, "
            "e.g. functools.partial(tgispy.HFClientTGI, model=..., port=None, url=[...])"
        )
    if isinstance(inputs, str) or not inputs:
        raise ConfigError("map_program needs inputs=, a list of input columns: ['question']")
    for name, value in (
        ("max_in_flight", max_in_flight),
        ("concurrency", concurrency),
        ("batch_size", batch_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"map_program: {name} must be an int >= 1, got {value!r}")
    return dataset.map_batches(
        ProgramBatchMapper,
        fn_constructor_args=(program, lm),
        fn_constructor_kwargs={
            "inputs": list(inputs),
            "max_in_flight": max_in_flight,
            "metric": metric,
        },
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=concurrency,
        **map_batches_kwargs,
    )
