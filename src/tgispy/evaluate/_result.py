"""What an evaluation produced: one :class:`ExampleResult` per example, failures with their data.

Pure data and pure conversions (table records, JSON / CSV files); no program is run here.
"""

from __future__ import annotations

import csv
import json
import traceback as traceback_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tgispy.errors import TgispyError
from tgispy.evaluate._outcome import INFRA, PROGRAM, error_kind
from tgispy.primitives import Example, Prediction

__all__ = [
    "ErrorInfo",
    "EvaluationError",
    "EvaluationResult",
    "ExampleResult",
    "FailedPrediction",
    "merge_dicts",
]


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised while running or scoring one example, as data.

    Attributes:
        type: the exception class name (``"OverloadedError"``).
        message: its message (TGI's message for server errors).
        replica: the TGI replica that produced it, when known (``TGIError.replica``).
        status: the HTTP status, when there was a response.
        traceback: the formatted traceback, when ``provide_traceback=True``.
        kind: ``"program"`` (the program or its input failed: scored 0, as in DSPy 2.4) or
            ``"infra"`` (no replica answered, a timeout, 5xx after retries: says nothing about
            the program; see :func:`tgispy.evaluate.error_kind`).

    Example:
        >>> ErrorInfo.from_exception(ValueError("bad")).describe()
        'ValueError: bad'
    """

    type: str
    message: str
    replica: str | None = None
    status: int | None = None
    traceback: str | None = None
    kind: str = PROGRAM

    @property
    def infra(self) -> bool:
        """Whether this is an infrastructure failure rather than the program's."""
        return self.kind == INFRA

    @classmethod
    def from_exception(cls, exc: BaseException, *, with_traceback: bool = False) -> ErrorInfo:
        """Capture ``exc``'s type, message, replica and status (and traceback if asked)."""
        message = getattr(exc, "message", None)
        if not isinstance(message, str):
            message = str(exc)
        replica = getattr(exc, "replica", None)
        status = getattr(exc, "status", None)
        tb = None
        if with_traceback:
            tb = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            type=type(exc).__name__,
            message=message,
            replica=replica if isinstance(replica, str) else None,
            status=status if isinstance(status, int) else None,
            traceback=tb,
            kind=error_kind(exc),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorInfo:
        """The inverse of :meth:`as_dict` (a results file's ``error`` field)."""
        replica, status = data.get("replica"), data.get("status")
        return cls(
            type=str(data.get("type", "Exception")),
            message=str(data.get("message", "")),
            replica=replica if isinstance(replica, str) else None,
            status=status if isinstance(status, int) else None,
            kind=INFRA if data.get("kind") == INFRA else PROGRAM,
        )

    def describe(self) -> str:
        """``"Type: message (replica ..., status ...)"`` on one line."""
        text = f"{self.type}: {self.message}"
        details = []
        if self.status is not None:
            details.append(f"status {self.status}")
        if self.replica:
            details.append(f"replica {self.replica}")
        if details:
            text += " (" + ", ".join(details) + ")"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "replica": self.replica,
            "status": self.status,
            "kind": self.kind,
        }


class FailedPrediction(Prediction):
    """The output recorded for an example whose program (or metric) raised: no fields, an error.

    It is falsy and empty, like the ``{}`` DSPy 2.4 put in the outputs, and carries
    :attr:`error`.

    Example:
        >>> failed = FailedPrediction(ErrorInfo("ValueError", "bad"))
        >>> bool(failed), failed.error.type
        (False, 'ValueError')
    """

    _error: ErrorInfo

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__()
        self.__dict__["_error"] = error

    @property
    def error(self) -> ErrorInfo:
        """What went wrong."""
        return self._error

    def __repr__(self) -> str:
        return f"FailedPrediction({self._error.describe()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FailedPrediction, (self._error,))


@dataclass(frozen=True)
class ExampleResult:
    """One example's outcome.

    Attributes:
        index: position in the devset.
        example: the devset example.
        prediction: the program's output, or a :class:`FailedPrediction`.
        score: the metric's value (``0.0`` for a failure).
        error: the failure, or ``None``.
        latency_s: seconds the program and metric took, when measured.
        example_id: the example's stable id in a results file, when there is one.
    """

    index: int
    example: Any
    prediction: Any
    score: Any
    error: ErrorInfo | None = None
    latency_s: float | None = None
    example_id: str | None = None

    @property
    def status(self) -> str:
        """``"ok"``, ``"program_error"`` or ``"infra_error"``."""
        if self.error is None:
            return "ok"
        return "infra_error" if self.error.infra else "program_error"


def _fields(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Example):
        return dict(obj.items())
    if isinstance(obj, Mapping):
        return obj
    return {"prediction": obj}


def merge_dicts(d1: Mapping[str, Any], d2: Mapping[str, Any]) -> dict[str, Any]:
    """DSPy 2.4's merge of example and prediction: clashing keys become ``example_k`` / ``pred_k``.

    Example:
        >>> merge_dicts({"question": "q", "answer": "a"}, {"answer": "b"})
        {'question': 'q', 'example_answer': 'a', 'pred_answer': 'b'}
    """
    merged: dict[str, Any] = {}
    for k, v in d1.items():
        merged[f"example_{k}" if k in d2 else k] = v
    for k, v in d2.items():
        merged[f"pred_{k}" if k in d1 else k] = v
    return merged


@dataclass
class EvaluationResult:
    """Everything one :class:`~tgispy.Evaluate` run produced (also a partial run).

    Attributes:
        rows: the finished examples, in devset order.
        total: the devset size.
        metric_name: the metric's name (the score column of tables and files).
        elapsed_s: wall time of the run.
        stopped: ``None`` (ran to the end), ``"interrupted"`` (Ctrl-C / cancelled) or
            ``"max_errors"``.
        resumed: how many of the rows came from a resumed results file.

    Example:
        >>> r = EvaluationResult([ExampleResult(0, {"q": "x"}, {"a": "y"}, True)], 1, "m", 0.1)
        >>> r.score, r.ncorrect
        (100.0, 1)
    """

    rows: list[ExampleResult]
    total: int
    metric_name: str
    elapsed_s: float
    stopped: str | None = None
    resumed: int = 0
    failures: list[ErrorInfo] = field(init=False)

    def __post_init__(self) -> None:
        self.failures = [row.error for row in self.rows if row.error is not None]

    @property
    def finished(self) -> int:
        """How many examples finished (succeeded or failed)."""
        return len(self.rows)

    @property
    def ncorrect(self) -> Any:
        """The sum of the scores (a number; ``True`` counts 1)."""
        total: Any = 0
        for row in self.rows:
            total += row.score
        return total

    @property
    def score(self) -> float:
        """The average score of the finished examples, as a percentage rounded to 2 decimals."""
        if not self.rows:
            return 0.0
        return round(100 * float(self.ncorrect) / len(self.rows), 2)

    @property
    def scores(self) -> list[Any]:
        return [row.score for row in self.rows]

    @property
    def program_errors(self) -> int:
        """Examples that failed because of the program or its input (scored 0, as in DSPy 2.4)."""
        return sum(1 for f in self.failures if not f.infra)

    @property
    def infra_errors(self) -> int:
        """Examples that failed because no replica answered (timeouts, 5xx after retries)."""
        return sum(1 for f in self.failures if f.infra)

    @property
    def answered(self) -> int:
        """Finished examples the fleet answered: every finished one but the infra failures."""
        return self.finished - self.infra_errors

    @property
    def answered_score(self) -> float:
        """The average score over :attr:`answered` examples, in percent (2 decimals).

        DSPy 2.4's :attr:`score` counts infrastructure failures as wrong answers; this one
        leaves them out, so an outage of part of the fleet does not look like a worse program.
        """
        if not self.answered:
            return 0.0
        return round(100 * float(self.ncorrect) / self.answered, 2)

    @property
    def outputs(self) -> list[tuple[Any, Any, Any]]:
        """``(example, prediction, score)`` per finished example (DSPy's ``return_outputs``)."""
        return [(row.example, row.prediction, row.score) for row in self.rows]

    def summary(self) -> str:
        """``"Average Metric: k / n (p%)"`` over the finished examples, plus failures.

        Program errors read ``"; 2 failed"``; infrastructure errors are named apart, with the
        score over the answered examples beside them:
        ``"; 3 infra errors (no answer from the fleet): 6 / 7 answered (85.7%)"``.
        """
        text = f"Average Metric: {format_number(self.ncorrect)} / {self.finished} "
        text += f"({percent(self.ncorrect, self.finished)}%)"
        if self.program_errors:
            text += f"; {self.program_errors} failed"
        if self.infra_errors:
            text += (
                f"; {self.infra_errors} infra errors (no answer from the fleet): "
                f"{format_number(self.ncorrect)} / {self.answered} answered "
                f"({percent(self.ncorrect, self.answered)}%)"
            )
        if self.finished < self.total:
            text += f"; {self.total - self.finished} of {self.total} not run"
        return text

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per row: example and prediction fields, the score, the error if any."""
        # A failed row shows the prediction fields of the others, empty, so columns line up.
        pred_keys: dict[str, None] = {}
        for row in self.rows:
            if row.error is None:
                pred_keys.update(dict.fromkeys(_fields(row.prediction)))
        out = []
        for row in self.rows:
            prediction = dict(pred_keys) if row.error is not None else _fields(row.prediction)
            record = merge_dicts(_fields(row.example), prediction)
            record[self.metric_name] = row.score
            if row.error is not None:
                record["error"] = row.error.describe()
            out.append(record)
        return out

    def save_as_json(self, path: str | Path) -> None:
        """Write :meth:`records` as a JSON list (values that are not JSON become strings)."""
        text = json.dumps(self.records(), indent=2, ensure_ascii=False, default=str)
        Path(path).write_text(text + "\n", encoding="utf-8")

    def save_as_csv(self, path: str | Path) -> None:
        """Write :meth:`records` as CSV with a header (the union of the records' keys)."""
        records = self.records()
        columns = column_order(records)
        with Path(path).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for record in records:
                writer.writerow({k: _csv_value(v) for k, v in record.items()})


def _csv_value(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def column_order(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The keys of ``records`` in order of first appearance."""
    seen: dict[str, None] = {}
    for record in records:
        for key in record:
            seen.setdefault(key, None)
    return list(seen)


def format_number(value: Any) -> str:
    """``3`` for whole numbers (also ``3.0`` and ``True`` sums), else two decimals."""
    number = float(value)
    if number.is_integer():
        return str(int(number))
    return f"{number:.2f}"


def percent(ncorrect: Any, ntotal: int) -> float:
    return round(100 * float(ncorrect) / ntotal, 1) if ntotal else 0.0


class EvaluationError(TgispyError):
    """An evaluation stopped early because ``max_errors`` examples failed.

    Attributes:
        failures: every recorded failure (type, message, replica).
        result: the partial :class:`EvaluationResult` (the examples that finished).
    """

    def __init__(
        self,
        message: str,
        *,
        failures: list[ErrorInfo] | None = None,
        result: EvaluationResult | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.failures = list(failures or [])
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.message, self.failures, self.result))


def _rebuild(
    message: str, failures: list[ErrorInfo], result: EvaluationResult | None
) -> EvaluationError:
    return EvaluationError(message, failures=failures, result=result)


def summarize_failures(failures: list[ErrorInfo], limit: int = 5) -> str:
    """The distinct failures with counts, most common first, at most ``limit`` lines."""
    counts: dict[str, int] = {}
    for failure in failures:
        key = failure.describe()
        counts[key] = counts.get(key, 0) + 1
    lines = sorted(counts.items(), key=lambda kv: -kv[1])
    text = "\n".join(f"  {n}x {desc}" for desc, n in lines[:limit])
    if len(lines) > limit:
        text += f"\n  ... and {len(lines) - limit} other kinds"
    return text
