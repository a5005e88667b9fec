"""``Evaluate``: run a program over a devset in parallel and score it (DSPy 2.4's API)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tgispy.errors import ConfigError
from tgispy.evaluate._result import (
    ErrorInfo,
    EvaluationError,
    EvaluationResult,
    ExampleResult,
    FailedPrediction,
    format_number,
    percent,
    summarize_failures,
)
from tgispy.evaluate._runner import async_entry, run_interruptible, run_pool, sync_pool_job
from tgispy.evaluate._table import display_table as show_table
from tgispy.primitives import Example

__all__ = ["Evaluate"]

logger = logging.getLogger(__name__)


def metric_name(metric: Any) -> str:
    """The name of a metric's score column: a function's ``__name__``, else its class name."""
    if isinstance(metric, types.FunctionType):
        return metric.__name__
    return type(metric).__name__


class Evaluate:
    """Run a program on every example of a devset, score each prediction, report the average.

    Args:
        devset: the examples (``dspy.Example(...).with_inputs(...)``).
        metric: ``metric(example, prediction) -> bool | float`` (or an ``async def``).
        num_threads: how many examples are in flight at once. Programs with ``aforward``
            (``Predict``, ``ChainOfThought``, modules that define it) run as coroutines on one
            event loop; programs with only ``forward`` run in that many worker threads, each in
            the caller's settings context.
        display_progress: show a progress bar with ``Average Metric: k / n (p%)``.
        display_table: show a results table (``True``: all rows; an int: that many rows).
        max_errors: stop the run with :class:`EvaluationError` once this many examples failed
            (``None``: never stop). A failed example scores 0.
        return_all_scores: also return the per-example scores.
        return_outputs: also return ``(example, prediction, score)`` per example.
        provide_traceback: log (and record) the traceback of each failure.
        save_as_json: write the results table to this JSON file.
        save_as_csv: write the results table to this CSV file.

    ``evaluate(program)`` returns the score as a percentage rounded to 2 decimals;
    ``(score, scores)``, ``(score, outputs)`` or ``(score, outputs, scores)`` with the flags, as
    in DSPy 2.4. The full :class:`EvaluationResult` of the last run is :attr:`last_result`.

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.evaluate import answer_exact_match
        >>> from tgispy.utils.dummies import DummyLM
        >>> dspy.configure(lm=DummyLM({"France": "Paris", "Italy": "Rome"}))
        >>> devset = [dspy.Example(question=f"Capital of {c}?", answer="Paris").with_inputs(
        ...     "question") for c in ("France", "Italy")]
        >>> evaluate = dspy.Evaluate(devset=devset, metric=answer_exact_match, num_threads=2)
        >>> evaluate(dspy.Predict("question -> answer"))
        50.0
    """

    def __init__(
        self,
        *,
        devset: Sequence[Example],
        metric: Callable[..., Any] | None = None,
        num_threads: int = 1,
        display_progress: bool = False,
        display_table: bool | int = False,
        max_errors: int | None = 5,
        return_all_scores: bool = False,
        return_outputs: bool = False,
        provide_traceback: bool = False,
        save_as_json: str | Path | None = None,
        save_as_csv: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        if "display" in kwargs:
            logger.warning("Evaluate(display=...) is deprecated and ignored")
            kwargs.pop("display")
        if kwargs:
            raise ConfigError(
                f"Evaluate got unexpected arguments {sorted(kwargs)}; it takes devset, metric, "
                "num_threads, display_progress, display_table, max_errors, return_all_scores, "
                "return_outputs, provide_traceback, save_as_json, save_as_csv"
            )
        _check_threads(num_threads)
        _check_max_errors(max_errors)
        self.devset = devset
        self.metric = metric
        self.num_threads = num_threads
        self.display_progress = display_progress
        self.display_table = display_table
        self.max_errors = max_errors
        self.return_all_scores = return_all_scores
        self.return_outputs = return_outputs
        self.provide_traceback = provide_traceback
        self.save_as_json = save_as_json
        self.save_as_csv = save_as_csv
        self.error_count = 0
        self.last_result: EvaluationResult | None = None

    def __call__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        program: Any,
        metric: Callable[..., Any] | None = None,
        devset: Sequence[Example] | None = None,
        num_threads: int | None = None,
        display_progress: bool | None = None,
        display_table: bool | int | None = None,
        return_all_scores: bool | None = None,
        return_outputs: bool | None = None,
        *,
        save_as_json: str | Path | None = None,
        save_as_csv: str | Path | None = None,
    ) -> Any:
        """Evaluate ``program``; arguments given here override the constructor's.

        Ctrl-C stops the run promptly: the examples in flight are cancelled, what finished is
        logged (and saved, with ``save_as_json`` / ``save_as_csv``), then ``KeyboardInterrupt``
        is raised.
        """
        return run_interruptible(
            lambda: self.acall(
                program,
                metric,
                devset,
                num_threads,
                display_progress,
                display_table,
                return_all_scores,
                return_outputs,
                save_as_json=save_as_json,
                save_as_csv=save_as_csv,
            )
        )

    async def acall(  # noqa: PLR0917 - the same signature as __call__
        self,
        program: Any,
        metric: Callable[..., Any] | None = None,
        devset: Sequence[Example] | None = None,
        num_threads: int | None = None,
        display_progress: bool | None = None,
        display_table: bool | int | None = None,
        return_all_scores: bool | None = None,
        return_outputs: bool | None = None,
        *,
        save_as_json: str | Path | None = None,
        save_as_csv: str | Path | None = None,
    ) -> Any:
        """Async twin of ``__call__`` (cancelling it cancels the examples in flight)."""
        metric = metric if metric is not None else self.metric
        devset = devset if devset is not None else self.devset
        num_threads = num_threads if num_threads is not None else self.num_threads
        progress = self.display_progress if display_progress is None else display_progress
        table = self.display_table if display_table is None else display_table
        all_scores = self.return_all_scores if return_all_scores is None else return_all_scores
        outputs = self.return_outputs if return_outputs is None else return_outputs
        json_path = save_as_json if save_as_json is not None else self.save_as_json
        csv_path = save_as_csv if save_as_csv is not None else self.save_as_csv

        if not callable(program):
            raise ConfigError(f"program must be a module or a callable, got {type(program)!r}")
        if metric is None or not callable(metric):
            raise ConfigError(
                "Evaluate needs a metric(example, prediction), e.g. "
                "Evaluate(devset=..., metric=tgispy.evaluate.answer_exact_match)"
            )
        _check_threads(num_threads)
        examples, inputs = _prepare_devset(devset)

        run = _Run(
            examples,
            inputs,
            metric=metric,
            max_errors=self.max_errors,
            provide_traceback=self.provide_traceback,
        )
        started = time.perf_counter()
        stopped: str | None = None
        failed = False
        try:
            with _progress_bar(len(examples), progress) as bar:
                run.bar = bar
                completed = await run.execute(program, num_threads)
            if not completed:
                stopped = "max_errors"
        except asyncio.CancelledError:
            stopped = "interrupted"
            raise
        except BaseException:
            failed = True
            raise
        finally:
            result = EvaluationResult(
                rows=run.finished_rows(),
                total=len(examples),
                metric_name=metric_name(metric),
                elapsed_s=time.perf_counter() - started,
                stopped=stopped,
            )
            self.last_result = result
            self.error_count = run.errors
            if stopped is not None or failed:
                _report_partial(result)
            _save(result, json_path, csv_path)

        if stopped == "max_errors":
            message = (
                f"Evaluation stopped: {run.errors} examples failed (max_errors={self.max_errors});"
                f" {result.finished} of {result.total} finished.\n"
                f"{summarize_failures(result.failures)}\n"
                "Fix the failures (provide_traceback=True shows where they come from), or raise "
                "max_errors (None never stops)."
            )
            raise EvaluationError(
                message, failures=result.failures, result=result
            ) from run.last_exception

        logger.info(
            "Average Metric: %s / %d (%s%%)",
            format_number(result.ncorrect),
            result.finished,
            percent(result.ncorrect, result.finished),
        )
        if table:
            show_table(result.records(), result.metric_name, table)

        score = result.score
        if all_scores and outputs:
            return score, result.outputs, result.scores
        if all_scores:
            return score, result.scores
        if outputs:
            return score, result.outputs
        return score


def _check_threads(num_threads: Any) -> None:
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ConfigError(f"num_threads must be an int >= 1, got {num_threads!r}")


def _check_max_errors(max_errors: Any) -> None:
    if max_errors is None:
        return
    if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 0:
        raise ConfigError(f"max_errors must be an int >= 0 or None, got {max_errors!r}")


def _prepare_devset(devset: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    if devset is None:
        raise ConfigError("Evaluate needs a devset: Evaluate(devset=[dspy.Example(...), ...])")
    examples = list(devset)
    if not examples:
        raise ConfigError("the devset is empty; give Evaluate at least one example")
    inputs: list[dict[str, Any]] = []
    for idx, example in enumerate(examples):
        if not isinstance(example, Example):
            raise ConfigError(
                f"devset[{idx}] is a {type(example).__name__}, not a dspy.Example; build it "
                "with dspy.Example(question=..., answer=...).with_inputs('question')"
            )
        if example._input_keys is None:
            raise ConfigError(
                f"devset[{idx}] has no input keys; mark them with "
                f".with_inputs({', '.join(repr(k) for k in list(example.keys())[:1])})"
            )
        inputs.append(dict(example.inputs().items()))
    return examples, inputs


class _Run:
    """The state of one evaluation run: rows by index, running totals, the progress bar."""

    def __init__(
        self,
        examples: list[Any],
        inputs: list[dict[str, Any]],
        *,
        metric: Callable[..., Any],
        max_errors: int | None,
        provide_traceback: bool,
    ) -> None:
        self.examples = examples
        self.inputs = inputs
        self.metric = metric
        self.metric_is_async = inspect.iscoroutinefunction(metric)
        self.max_errors = max_errors
        self.provide_traceback = provide_traceback
        self.rows: list[ExampleResult | None] = [None] * len(examples)
        self.ncorrect: Any = 0
        self.finished = 0
        self.errors = 0
        self.last_exception: BaseException | None = None
        self.bar: Any = None

    def finished_rows(self) -> list[ExampleResult]:
        return [row for row in self.rows if row is not None]

    async def execute(self, program: Any, num_threads: int) -> bool:
        entry = async_entry(program)
        if entry is not None:
            return await run_pool(
                len(self.examples),
                lambda i: self._arun_one(entry, i),
                concurrency=num_threads,
                on_result=self._on_result,
            )
        job, pool = sync_pool_job(lambda i: self._run_one(program, i), num_threads)
        try:
            return await run_pool(
                len(self.examples), job, concurrency=num_threads, on_result=self._on_result
            )
        finally:
            # Examples still running in a thread (after Ctrl-C or max_errors) finish there and
            # their results are dropped; the threads are daemons, so they never delay an exit.
            pool.shutdown()

    async def _arun_one(self, entry: Callable[..., Any], index: int) -> ExampleResult:
        example = self.examples[index]
        try:
            prediction = await entry(**self.inputs[index])
            score = self.metric(example, prediction)
            if self.metric_is_async or inspect.isawaitable(score):
                score = await score
        except Exception as exc:
            return self._failed(index, exc)
        return ExampleResult(index, example, prediction, score)

    def _run_one(self, program: Any, index: int) -> ExampleResult:
        example = self.examples[index]
        try:
            prediction = program(**self.inputs[index])
            score = self.metric(example, prediction)
            if inspect.isawaitable(score):
                score = _await_in_thread(score)
        except Exception as exc:
            return self._failed(index, exc)
        return ExampleResult(index, example, prediction, score)

    def _failed(self, index: int, exc: Exception) -> ExampleResult:
        error = ErrorInfo.from_exception(exc, with_traceback=self.provide_traceback)
        if self.provide_traceback:
            logger.error(
                "Error for example %d of the devset: %s\nwith inputs: %s\n%s",
                index,
                error.describe(),
                self.inputs[index],
                error.traceback,
            )
        else:
            logger.error(
                "Error for example %d of the devset: %s. Set provide_traceback=True to see the "
                "stack trace.",
                index,
                error.describe(),
            )
        self.last_exception = exc
        return ExampleResult(index, self.examples[index], FailedPrediction(error), 0.0, error)

    def _on_result(self, index: int, row: ExampleResult) -> bool:
        self.rows[index] = row
        self.finished += 1
        self.ncorrect += row.score
        if row.error is not None:
            self.errors += 1
        bar = self.bar
        if bar is not None:
            bar.set_description(
                f"Average Metric: {format_number(self.ncorrect)} / {self.finished} "
                f"({percent(self.ncorrect, self.finished)}%)",
                refresh=False,
            )
            bar.update()
        return self.max_errors is None or self.errors < self.max_errors


def _await_in_thread(awaitable: Any) -> Any:
    from tgispy._sync import run_sync

    async def wait() -> Any:
        return await awaitable

    return run_sync(wait())


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = tqdm.tqdm(total=total, dynamic_ncols=True)
    try:
        with logging_redirect_tqdm():
            yield bar
    finally:
        bar.close()


def _report_partial(result: EvaluationResult) -> None:
    reason = {"interrupted": "interrupted", "max_errors": "stopped by max_errors"}.get(
        result.stopped or "", "stopped by an error"
    )
    logger.warning("Evaluation %s: %s", reason, result.summary())


def _save(result: EvaluationResult, json_path: Any, csv_path: Any) -> None:
    if json_path is not None:
        result.save_as_json(json_path)
    if csv_path is not None:
        result.save_as_csv(csv_path)
