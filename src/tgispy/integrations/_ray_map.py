"""The per-worker half of :func:`tgispy.integrations.ray.map_program`, free of Ray.

:class:`ProgramBatchMapper` is what each Ray Data actor runs: built once per worker (the
program and its own fleet client), then called with batches of rows (column name -> values). A
batch runs through :class:`~tgispy.evaluate.Evaluate`'s runner on the async fleet client, at most
``max_in_flight`` examples at a time, and comes back as the same columns plus the prediction's
fields, ``error``, ``error_kind`` and ``latency_s`` (and ``score`` with a metric). A failed
example is a row with its error, never a failed Ray task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tgispy._settings import context
from tgispy.errors import ConfigError
from tgispy.evaluate._evaluate import Evaluate
from tgispy.evaluate._records import jsonable
from tgispy.evaluate._result import ExampleResult
from tgispy.primitives import Example

__all__ = ["OUTPUT_COLUMNS", "ProgramBatchMapper"]

logger = logging.getLogger(__name__)

#: columns every output row has, besides the input columns and the prediction's fields
OUTPUT_COLUMNS = ("error", "error_kind", "latency_s")


def _answered(example: Any, prediction: Any) -> bool:
    return True


class ProgramBatchMapper:
    """Run a program over batches of rows with one fleet client per worker.

    Args:
        program: a program (module instance or callable), or a class to instantiate here.
        lm: builds this worker's LM (``functools.partial(tgispy.HFClientTGI, ...)``); the LM
            is built once, in the worker, so nothing holding sockets is pickled.
        inputs: the columns that are the program's input fields.
        max_in_flight: examples of one batch in flight at once on this worker.
        metric: optional ``metric(example, prediction)``; adds a ``score`` column.

    Example:
        >>> from tgispy.utils.dummies import DummyLM
        >>> import tgispy as dspy
        >>> mapper = ProgramBatchMapper(dspy.Predict("question -> answer"),
        ...                             lambda: DummyLM(["4"]), inputs=["question"])
        >>> mapper({"question": ["2+2?"]})["answer"]
        ['4']
    """

    def __init__(
        self,
        program: Any,
        lm: Callable[[], Any] | None,
        *,
        inputs: Sequence[str],
        max_in_flight: int = 16,
        metric: Callable[..., Any] | None = None,
    ) -> None:
        if not inputs:
            raise ConfigError("map_program needs the input columns: inputs=['question']")
        self.program = program() if isinstance(program, type) else program
        self.lm = lm() if lm is not None else None
        self.inputs = list(inputs)
        self.max_in_flight = max_in_flight
        self.metric = metric

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Run the batch's rows; return its columns plus the outputs, row for row."""
        columns = {name: _to_list(values) for name, values in batch.items()}
        missing = [name for name in self.inputs if name not in columns]
        if missing:
            raise ConfigError(
                f"the dataset has no column {missing[0]!r}; its columns are {sorted(columns)}"
            )
        count = len(columns[self.inputs[0]])
        rows = self._run(columns, count)
        return _output(columns, rows, scored=self.metric is not None)

    def _run(self, columns: Mapping[str, list[Any]], count: int) -> list[ExampleResult]:
        if count == 0:
            return []
        examples = [
            Example({name: values[i] for name, values in columns.items()}).with_inputs(*self.inputs)
            for i in range(count)
        ]
        evaluate = Evaluate(
            devset=examples,
            metric=self.metric or _answered,
            num_threads=self.max_in_flight,
            max_errors=None,
        )
        settings = {"lm": self.lm} if self.lm is not None else {}
        with context(**settings):
            evaluate(self.program)
        result = evaluate.last_result
        assert result is not None and result.finished == count
        return sorted(result.rows, key=lambda row: row.index)


def _to_list(values: Any) -> list[Any]:
    if isinstance(values, list):
        return values
    # Ray hands numpy arrays (numpy comes with Ray); tolist() gives Python scalars.
    import numpy

    return list(numpy.asarray(values).tolist())


def _output(
    columns: Mapping[str, list[Any]], rows: Sequence[ExampleResult], *, scored: bool
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {name: list(values) for name, values in columns.items()}
    fields: dict[str, None] = {}
    for row in rows:
        if row.error is None:
            fields.update(dict.fromkeys(_prediction_fields(row.prediction)))
    for name in fields:
        column = f"pred_{name}" if name in columns or name in OUTPUT_COLUMNS else name
        out[column] = [
            None if row.error is not None else _prediction_fields(row.prediction).get(name)
            for row in rows
        ]
    if scored:
        out["score"] = [float(row.score) for row in rows]
    out["error"] = [None if row.error is None else row.error.describe() for row in rows]
    out["error_kind"] = [None if row.error is None else row.error.kind for row in rows]
    out["latency_s"] = [row.latency_s for row in rows]
    return out


def _prediction_fields(prediction: Any) -> dict[str, Any]:
    data = jsonable(prediction)
    if not isinstance(data, dict):
        return {"prediction": data}
    # Nested values become JSON-ish strings: Arrow columns need one type per column.
    return {
        str(k): v if isinstance(v, str | int | float | bool) or v is None else str(v)
        for k, v in data.items()
    }
