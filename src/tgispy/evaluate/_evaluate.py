"""``Evaluate``: run a program over a devset in parallel and score it (DSPy 2.4's API)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tgispy.errors import ConfigError
from tgispy.evaluate._records import (
    SUMMARY_KEY,
    ResultsWriter,
    example_ids,
    jsonable,
    read_results,
)
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
from tgispy.primitives import Example, Prediction

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
        results: a results file (JSONL) that gets one line per example as soon as it finishes
            (id, prediction, score, error with its kind, replica and status, latency), flushed
            at once: a run killed at any moment leaves every finished example in it.
        resume: continue ``results``: examples already in it are not run again (their lines
            count in the report as if they had just run), except infrastructure failures,
            which are. Without ``resume`` a ``results`` file that already holds examples is
            refused, so a rerun never overwrites hours of results.
        id_field: the example field that identifies an example in ``results`` (default: a
            hash of its inputs).
        retry_infra_failures: after the run, run the examples that failed for infrastructure
            reasons (no replica answered, timeouts, 5xx after retries) again, up to this many
            rounds; a recovered example replaces its failure everywhere.
        results_info: extra JSON fields for the results file's header (e.g. a shard).

    ``evaluate(program)`` returns the score as a percentage rounded to 2 decimals;
    ``(score, scores)``, ``(score, outputs)`` or ``(score, outputs, scores)`` with the flags, as
    in DSPy 2.4. The full :class:`EvaluationResult` of the last run is :attr:`last_result`.

    Failures are told apart (:func:`tgispy.evaluate.error_kind`): program errors (parse
    errors, exceptions in your code, a 422 for this input) and infrastructure errors (no replica
    answered). Both score 0 in the returned score, as in DSPy 2.4; the report, the progress bar
    and the results file show the infrastructure errors apart, with the score over the answered
    examples (:attr:`EvaluationResult.answered_score`) beside it.

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
        results: str | Path | None = None,
        resume: bool = False,
        id_field: str | None = None,
        retry_infra_failures: int = 0,
        results_info: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "display" in kwargs:
            logger.warning("Evaluate(display=...) is deprecated and ignored")
            kwargs.pop("display")
        if kwargs:
            raise ConfigError(
                f"Evaluate got unexpected arguments {sorted(kwargs)}; it takes devset, metric, "
                "num_threads, display_progress, display_table, max_errors, return_all_scores, "
                "return_outputs, provide_traceback, save_as_json, save_as_csv, results, resume, "
                "id_field, retry_infra_failures, results_info"
            )
        _check_threads(num_threads)
        _check_max_errors(max_errors)
        if resume and results is None:
            raise ConfigError("resume=True needs the results file to resume: results='...jsonl'")
        if (
            isinstance(retry_infra_failures, bool)
            or not isinstance(retry_infra_failures, int)
            or retry_infra_failures < 0
        ):
            raise ConfigError(
                f"retry_infra_failures must be an int >= 0, got {retry_infra_failures!r}"
            )
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
        self.results = results
        self.resume = resume
        self.id_field = id_field
        self.retry_infra_failures = retry_infra_failures
        self.results_info = dict(results_info or {})
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
        name = metric_name(metric)

        run = _Run(
            examples,
            inputs,
            metric=metric,
            max_errors=self.max_errors,
            provide_traceback=self.provide_traceback,
        )
        if self.results is not None:
            run.ids = example_ids(examples, self.id_field)
            run.writer = self._open_results(run, name)
        started = time.perf_counter()
        stopped: str | None = None
        failed = False
        try:
            with _progress_bar(len(examples), run.finished, progress) as bar:
                run.bar = bar
                completed = await run.execute(program, num_threads, run.pending())
                rounds = 0
                while completed and rounds < self.retry_infra_failures and run.infra_failed():
                    rounds += 1
                    again = run.infra_failed()
                    logger.info(
                        "Retrying %d examples that failed for infrastructure reasons (round %d)",
                        len(again),
                        rounds,
                    )
                    completed = await run.execute(program, num_threads, again)
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
                metric_name=name,
                elapsed_s=time.perf_counter() - started,
                stopped=stopped,
                resumed=run.resumed,
            )
            if run.writer is not None:
                run.writer.write({SUMMARY_KEY: _summary_record(result, failed)})
                run.writer.close()
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

        if result.infra_errors:
            logger.warning(
                "%d examples failed for infrastructure reasons (no answer from the fleet); they "
                "score 0 in the returned score, as in DSPy 2.4. Over the %d answered examples "
                "the score is %s%%.",
                result.infra_errors,
                result.answered,
                result.answered_score,
            )

        score = result.score
        if all_scores and outputs:
            return score, result.outputs, result.scores
        if all_scores:
            return score, result.scores
        if outputs:
            return score, result.outputs
        return score

    def _open_results(self, run: _Run, metric: str) -> ResultsWriter:
        """Read what a resumed file holds into ``run``, then open the file for appending."""
        assert self.results is not None
        found = read_results(self.results)
        if found.records and not self.resume:
            raise ConfigError(
                f"{self.results} already holds {len(found.records)} results; pass resume=True "
                "(tgispy run --resume) to continue it, or give another file"
            )
        if self.resume:
            previous = found.header.get("metric")
            if previous is not None and previous != metric:
                raise ConfigError(
                    f"{self.results} was written with the metric {previous!r}, not {metric!r}; "
                    "resume with the same metric, or give another file"
                )
            run.resumed = run.preload(found.records)
            if run.resumed:
                logger.info("Resuming %s: %d examples already done", self.results, run.resumed)
        header = {"metric": metric, "total": len(run.examples), **self.results_info}
        return ResultsWriter(self.results, header, fresh=not found.records)


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
        self.program_errors = 0
        self.infra_errors = 0
        #: failures in this run (what max_errors counts; resumed lines do not count)
        self.errors = 0
        self.last_exception: BaseException | None = None
        self.bar: Any = None
        self.ids: list[str] | None = None
        self.writer: ResultsWriter | None = None
        #: examples taken from a resumed results file
        self.resumed = 0

    def finished_rows(self) -> list[ExampleResult]:
        return [row for row in self.rows if row is not None]

    def pending(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row is None]

    def infra_failed(self) -> list[int]:
        return [
            i
            for i, row in enumerate(self.rows)
            if row is not None and row.error is not None and row.error.infra
        ]

    def preload(self, records: Mapping[str, Mapping[str, Any]]) -> int:
        """Take the rows of examples a results file already has (not infra failures)."""
        assert self.ids is not None
        count = 0
        for index, example_id in enumerate(self.ids):
            record = records.get(example_id)
            if record is None or record.get("status") == "infra_error":
                continue
            row = row_from_record(record, index, self.examples[index], example_id)
            self._tally(row, +1)
            self.rows[index] = row
            count += 1
        return count

    async def execute(self, program: Any, num_threads: int, indices: list[int]) -> bool:
        if not indices:
            return True

        def on_result(k: int, row: ExampleResult) -> bool:
            return self._on_result(indices[k], row)

        entry = async_entry(program)
        if entry is not None:
            return await run_pool(
                len(indices),
                lambda k: self._arun_one(entry, indices[k]),
                concurrency=num_threads,
                on_result=on_result,
            )
        job, pool = sync_pool_job(lambda k: self._run_one(program, indices[k]), num_threads)
        try:
            return await run_pool(len(indices), job, concurrency=num_threads, on_result=on_result)
        finally:
            # Examples still running in a thread (after Ctrl-C or max_errors) finish there and
            # their results are dropped; the threads are daemons, so they never delay an exit.
            pool.shutdown()

    async def _arun_one(self, entry: Callable[..., Any], index: int) -> ExampleResult:
        example = self.examples[index]
        started = time.perf_counter()
        try:
            prediction = await entry(**self.inputs[index])
            score = self.metric(example, prediction)
            if self.metric_is_async or inspect.isawaitable(score):
                score = await score
        except Exception as exc:
            return self._failed(index, exc, time.perf_counter() - started)
        return self._ok(index, prediction, score, time.perf_counter() - started)

    def _run_one(self, program: Any, index: int) -> ExampleResult:
        example = self.examples[index]
        started = time.perf_counter()
        try:
            prediction = program(**self.inputs[index])
            score = self.metric(example, prediction)
            if inspect.isawaitable(score):
                score = _await_in_thread(score)
        except Exception as exc:
            return self._failed(index, exc, time.perf_counter() - started)
        return self._ok(index, prediction, score, time.perf_counter() - started)

    def _ok(self, index: int, prediction: Any, score: Any, latency: float) -> ExampleResult:
        example_id = self.ids[index] if self.ids is not None else None
        example = self.examples[index]
        return ExampleResult(index, example, prediction, score, None, latency, example_id)

    def _failed(self, index: int, exc: Exception, latency: float) -> ExampleResult:
        error = ErrorInfo.from_exception(exc, with_traceback=self.provide_traceback)
        kind = "infrastructure error" if error.infra else "Error"
        if self.provide_traceback:
            logger.error(
                "%s for example %d of the devset: %s\nwith inputs: %s\n%s",
                kind,
                index,
                error.describe(),
                self.inputs[index],
                error.traceback,
            )
        else:
            logger.error(
                "%s for example %d of the devset: %s. Set provide_traceback=True to see the "
                "stack trace.",
                kind,
                index,
                error.describe(),
            )
        self.last_exception = exc
        example_id = self.ids[index] if self.ids is not None else None
        return ExampleResult(
            index,
            self.examples[index],
            FailedPrediction(error),
            0.0,
            error,
            latency,
            example_id,
        )

    def _tally(self, row: ExampleResult, sign: int) -> None:
        self.finished += sign
        self.ncorrect += row.score if sign > 0 else -row.score
        if row.error is not None:
            if row.error.infra:
                self.infra_errors += sign
            else:
                self.program_errors += sign

    def _on_result(self, index: int, row: ExampleResult) -> bool:
        previous = self.rows[index]
        if previous is not None:  # a retried infrastructure failure
            self._tally(previous, -1)
        self.rows[index] = row
        self._tally(row, +1)
        if row.error is not None:
            self.errors += 1
        if self.writer is not None:
            self.writer.write(_record(row))
        bar = self.bar
        if bar is not None:
            self._show(bar, advance=previous is None)
        return self.max_errors is None or self.errors < self.max_errors

    def _show(self, bar: Any, *, advance: bool) -> None:
        bar.set_description(
            f"Average Metric: {format_number(self.ncorrect)} / {self.finished} "
            f"({percent(self.ncorrect, self.finished)}%)",
            refresh=False,
        )
        answered = self.finished - self.infra_errors
        bar.set_postfix_str(
            f"answered {answered}, program errors {self.program_errors}, "
            f"infra errors {self.infra_errors}, score over answered "
            f"{percent(self.ncorrect, answered)}%",
            refresh=False,
        )
        if advance:
            bar.update()
        else:
            bar.refresh()


def _record(row: ExampleResult) -> dict[str, Any]:
    """A results-file line for ``row`` (see :mod:`tgispy.evaluate._records`)."""
    return {
        "id": row.example_id,
        "index": row.index,
        "status": row.status,
        "example": jsonable(row.example),
        "prediction": None if row.error is not None else jsonable(row.prediction),
        "score": jsonable(row.score),
        "error": None if row.error is None else row.error.as_dict(),
        "latency_s": None if row.latency_s is None else round(row.latency_s, 6),
        # Per-example token usage needs the LM to report each call to the example that made it;
        # until it does, the field is there (null) so files keep one shape.
        "usage": None,
    }


def _summary_record(result: EvaluationResult, failed: bool) -> dict[str, Any]:
    return {
        "score": result.score,
        "answered_score": result.answered_score,
        "finished": result.finished,
        "total": result.total,
        "answered": result.answered,
        "program_errors": result.program_errors,
        "infra_errors": result.infra_errors,
        "resumed": result.resumed,
        "stopped": result.stopped or ("error" if failed else None),
        "elapsed_s": round(result.elapsed_s, 3),
    }


def row_from_record(
    record: Mapping[str, Any], index: int, example: Any, example_id: str
) -> ExampleResult:
    """The row a results-file line stands for (the example itself comes from the devset)."""
    error_data = record.get("error")
    latency = record.get("latency_s")
    latency_s = float(latency) if isinstance(latency, int | float) else None
    if isinstance(error_data, Mapping):
        error = ErrorInfo.from_dict(error_data)
        return ExampleResult(
            index,
            example,
            FailedPrediction(error),
            record.get("score", 0.0),
            error,
            latency_s,
            example_id,
        )
    fields = record.get("prediction")
    prediction = Prediction(**fields) if isinstance(fields, Mapping) else fields
    return ExampleResult(
        index, example, prediction, record.get("score"), None, latency_s, example_id
    )


def _await_in_thread(awaitable: Any) -> Any:
    from tgispy._sync import run_sync

    async def wait() -> Any:
        return await awaitable

    return run_sync(wait())


@contextlib.contextmanager
def _progress_bar(total: int, initial: int, enabled: bool) -> Iterator[Any]:
    """One bar: ``Average Metric: k / n (p%)``, done / total, elapsed < ETA, rate, and the
    answered / program errors / infra errors counts with the score over answered examples."""
    if not enabled:
        yield None
        return
    import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = tqdm.tqdm(total=total, initial=initial, dynamic_ncols=True, unit="ex")
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
