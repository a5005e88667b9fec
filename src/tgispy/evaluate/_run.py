"""``tgispy run``: run a program file over a JSONL dataset, score it, write the outputs.

The program file is plain Python, run with :func:`runpy.run_path` (its ``__main__`` block does
not run). It defines:

* ``program`` -- a module instance (``dspy.ChainOfThought("question -> answer")``), a module
  class (instantiated with no arguments), or any callable taking the input fields; or
  ``build_program()`` returning one;
* optionally ``metric(example, prediction)`` and ``inputs = ["question", ...]``;
* optionally the LM (``dspy.configure(lm=...)``); ``--lm-url`` replaces it.

Each line of the dataset is a JSON object; its input keys are ``inputs`` (argument, else the
program file's, else the keys that are input fields of the program's predictors).

Long runs: ``output`` is a results file written as examples finish (see
:mod:`tgispy.evaluate._records`), ``resume`` continues it after a crash, ``shard="I/N"`` runs
every N-th example starting at I, and :func:`merge_results` reports over the shards' files.
"""

from __future__ import annotations

import json
import logging
import runpy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from tgispy._settings import context
from tgispy.errors import ConfigError
from tgispy.evaluate._evaluate import Evaluate, row_from_record
from tgispy.evaluate._records import parse_shard, read_results, shard_indices
from tgispy.evaluate._result import EvaluationError, EvaluationResult, ExampleResult
from tgispy.primitives import Example, Module

__all__ = ["completed", "merge_results", "run_program"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STOPPED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def completed(example: Any, prediction: Any) -> bool:
    """The metric used without one: every example that ran without an error scores 1."""
    return True


def run_program(
    program_path: str,
    data_path: str,
    *,
    lm_url: list[str] | None = None,
    model: str = "tgi",
    metric: str | None = None,
    inputs: Sequence[str] | None = None,
    num_threads: int = 16,
    max_errors: int | None = None,
    max_tokens: int | None = None,
    limit: int | None = None,
    output: str | None = None,
    resume: bool = False,
    id_field: str | None = None,
    shard: str | None = None,
    retry_infra_failures: int = 0,
    cache: bool = True,
    display_progress: bool = True,
    display_table: int = 0,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``program_path``'s program on every line of ``data_path``; return an exit status.

    Args:
        program_path: the Python file defining ``program`` (see the module docs).
        data_path: a JSONL file, one example per line.
        lm_url: TGI replica base URLs (``["http://127.0.0.1:8080"]``); ``None`` keeps the LM the
            program file configured.
        model: the model id for the TGI client (cache keys, history).
        metric: a metric of :mod:`tgispy.evaluate` (``"answer_exact_match"``), or
            ``"module:function"`` / ``"path/to/file.py:function"``; default: the file's
            ``metric``, else :func:`completed`.
        inputs: the input keys of each line.
        num_threads: examples in flight.
        max_errors: stop after this many failed examples (``None``: never).
        max_tokens: ``max_tokens`` for the TGI client.
        limit: run only the first ``limit`` lines.
        output: a results file: one JSON line per example (id, inputs, prediction, score,
            error with its kind, replica and status, latency), appended as each finishes.
        resume: continue ``output``: skip the examples it holds, run again those that failed
            for infrastructure reasons.
        id_field: the data field that identifies an example (default: a hash of its inputs).
        shard: ``"I/N"``: run only every N-th example, starting at the I-th (0-based).
        retry_infra_failures: rounds of re-running infrastructure failures at the end.
        cache: whether the TGI client uses its cache.
        display_progress: show a progress bar (on stderr).
        display_table: print a results table of the first N examples.
        stdout: where the summary goes (default ``sys.stdout``).
        stderr: where errors go (default ``sys.stderr``).

    Returns:
        0 when every example ran (failed examples are recorded and score 0), 1 when the run
        stopped at ``max_errors``, 2 for bad arguments or files, 130 when interrupted.

    Example:
        >>> run_program("qa.py", "dev.jsonl", lm_url=["http://127.0.0.1:8080"])  # doctest: +SKIP
        Average Metric: 2 / 3 (66.7%)
        0
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        namespace = _load_program_file(program_path)
        program = _program(namespace, program_path)
        metric_fn = _metric(metric, namespace)
        input_keys = _input_keys(inputs, namespace, program)
        devset = _load_dataset(data_path, input_keys, _predictor_inputs(program), limit)
        info: dict[str, Any] = {"data": str(data_path), "data_total": len(devset)}
        if shard is not None:
            where = parse_shard(shard)
            devset = [devset[i] for i in shard_indices(len(devset), where)]
            if not devset:
                raise ConfigError(f"shard {shard} of {data_path} has no examples")
            info["shard"] = list(where)
        if resume and output is None:
            raise ConfigError("--resume continues a results file: pass --output RESULTS.jsonl")
        settings: dict[str, Any] = {}
        if lm_url:
            settings["lm"] = _tgi_client(lm_url, model, max_tokens, cache)
        evaluate = Evaluate(
            devset=devset,
            metric=metric_fn,
            num_threads=num_threads,
            display_progress=display_progress,
            display_table=display_table or False,
            max_errors=max_errors,
            results=output,
            resume=resume,
            id_field=id_field,
            retry_infra_failures=retry_infra_failures,
            results_info=info,
        )
    except ConfigError as exc:
        print(f"tgispy run: {exc}", file=err)
        return EXIT_USAGE

    status = EXIT_OK
    try:
        with context(**settings):
            evaluate(program)
    except EvaluationError as exc:
        print(f"tgispy run: {exc}", file=err)
        status = EXIT_STOPPED
    except KeyboardInterrupt:
        print("tgispy run: interrupted", file=err)
        status = EXIT_INTERRUPTED
    except ConfigError as exc:
        print(f"tgispy run: {exc}", file=err)
        return EXIT_USAGE
    result = evaluate.last_result
    if result is None:  # Evaluate refused its arguments (e.g. the results file)
        return status
    _print_summary(result, "completed" if metric_fn is completed else result.metric_name, out)
    if output is not None:
        print(f"results: {output}", file=out)
    return status


def merge_results(
    paths: Sequence[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Report over the results files of a sharded run (``tgispy run merge RESULTS-*.jsonl``).

    Rows are put back in data order (a shard ``I/N`` file's ``k``-th example is line
    ``k * N + I``) and the report is the one a single run over all the data prints.

    Returns:
        0, or 2 when a file is missing or is not a results file.

    Example:
        >>> merge_results(["r-0.jsonl", "r-1.jsonl"])  # doctest: +SKIP
        Average Metric: 3 / 4 (75.0%)
        0
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    rows: dict[str, ExampleResult] = {}
    total = data_total = 0
    metrics: set[str] = set()
    try:
        if not paths:
            raise ConfigError("name the results files to merge: tgispy run merge RESULTS-*.jsonl")
        for path in paths:
            if not Path(path).is_file():
                raise ConfigError(f"results file {path!r} not found")
            found = read_results(path)
            header = found.header
            if not header:
                raise ConfigError(f"{path} has no tgispy results header; is it a results file?")
            shard = header.get("shard") or [0, 1]
            first, step = int(shard[0]), int(shard[1])
            total += int(header.get("total", len(found.records)))
            if isinstance(header.get("data_total"), int):
                data_total = max(data_total, header["data_total"])
            if isinstance(header.get("metric"), str):
                metrics.add(header["metric"])
            for example_id, record in found.records.items():
                index = int(record.get("index", 0)) * step + first
                example = record.get("example")
                rows[example_id] = row_from_record(record, index, example, example_id)
    except (ConfigError, ValueError, TypeError) as exc:
        print(f"tgispy run merge: {exc}", file=err)
        return EXIT_USAGE
    if len(metrics) > 1:
        print(
            f"tgispy run merge: the files were scored with different metrics: {metrics}", file=err
        )
        return EXIT_USAGE
    ordered = sorted(rows.values(), key=lambda row: row.index)
    name = metrics.pop() if metrics else "score"
    # A shard's header knows the size of all the data: a missing shard shows as "not run".
    result = EvaluationResult(
        rows=ordered, total=max(total, data_total, len(ordered)), metric_name=name, elapsed_s=0.0
    )
    print(result.summary(), file=out)
    print(
        f"score ({name}): {result.score} over {result.finished} examples from {len(paths)} files",
        file=out,
    )
    if result.infra_errors:
        print(_infra_line(result), file=out)
    return EXIT_OK


def _load_program_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"program file {path!r} not found; pass a .py file defining `program`")
    try:
        return runpy.run_path(str(file), run_name="__tgispy_run__")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"running {path} failed: {type(exc).__name__}: {exc}") from exc


def _program(namespace: dict[str, Any], path: str) -> Any:
    if "program" in namespace:
        program = namespace["program"]
        if isinstance(program, type):
            program = program()
    elif callable(namespace.get("build_program")):
        program = namespace["build_program"]()
    else:
        raise ConfigError(
            f"{path} defines no `program`; add e.g. program = dspy.ChainOfThought('question -> "
            "answer'), or a build_program() function"
        )
    if not callable(program):
        raise ConfigError(f"`program` in {path} is a {type(program).__name__}, not a program")
    return program


def _metric(spec: str | None, namespace: dict[str, Any]) -> Callable[..., Any]:
    if spec is None:
        found = namespace.get("metric")
        if found is None:
            return completed
        if not callable(found):
            raise ConfigError("`metric` in the program file must be a function")
        return found  # type: ignore[no-any-return]
    if ":" not in spec:
        from tgispy import evaluate as metrics_module

        found = getattr(metrics_module, spec, None)
        if not callable(found) or spec.startswith("_"):
            raise ConfigError(
                f"no metric {spec!r} in tgispy.evaluate; use e.g. answer_exact_match, or "
                "'module:function' / 'file.py:function'"
            )
        return found  # type: ignore[no-any-return]
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py"):
        values = _load_program_file(where)
    else:
        import importlib

        try:
            values = vars(importlib.import_module(where))
        except ImportError as exc:
            raise ConfigError(f"cannot import {where!r} for the metric: {exc}") from exc
    found = values.get(name)
    if not callable(found):
        raise ConfigError(f"{where} has no function {name!r} for the metric")
    return found  # type: ignore[no-any-return]


def _input_keys(
    given: Sequence[str] | None, namespace: dict[str, Any], program: Any
) -> list[str] | None:
    if given:
        return [k.strip() for k in given if k.strip()]
    from_file = namespace.get("inputs")
    if from_file is not None:
        if isinstance(from_file, str) or not all(isinstance(k, str) for k in from_file):
            raise ConfigError("`inputs` in the program file must be a list of field names")
        return list(from_file)
    return None  # inferred per row: the row's keys that are input fields of a predictor


def _predictor_inputs(program: Any) -> set[str]:
    keys: set[str] = set()
    if isinstance(program, Module):
        for predictor in program.predictors():
            keys.update(predictor.signature._input_fields)
    return keys


def _load_dataset(
    path: str, input_keys: list[str] | None, known_inputs: set[str], limit: int | None
) -> list[Example]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"dataset {path!r} not found; pass a JSONL file (one JSON object a line)")
    rows: list[dict[str, Any]] = []
    with file.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{lineno}: each line must be a JSON object")
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise ConfigError(f"dataset {path!r} has no examples")
    examples = []
    for lineno, row in enumerate(rows, start=1):
        keys = input_keys if input_keys is not None else [k for k in row if k in known_inputs]
        if not keys:
            raise ConfigError(
                f"{path}: cannot tell the input fields of example {lineno}; pass --inputs "
                "question (or set inputs = ['question'] in the program file)"
            )
        examples.append(Example(row).with_inputs(*keys))
    return examples


def _tgi_client(urls: list[str], model: str, max_tokens: int | None, cache: bool) -> Any:
    from tgispy.lm._tgi import HFClientTGI

    kwargs: dict[str, Any] = {}
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    return HFClientTGI(model=model, port=None, url=list(urls), cache=cache, **kwargs)


def _print_summary(result: EvaluationResult, name: str, out: TextIO) -> None:
    ran = result.finished - result.resumed
    rate = ran / result.elapsed_s if result.elapsed_s > 0 else 0.0
    print(result.summary(), file=out)
    print(
        f"score ({name}): {result.score} over {result.finished} examples in "
        f"{result.elapsed_s:.1f} s ({rate:.1f} examples/s)",
        file=out,
    )
    if result.resumed:
        print(f"resumed: {result.resumed} examples came from the results file", file=out)
    if result.infra_errors:
        print(_infra_line(result), file=out)


def _infra_line(result: EvaluationResult) -> str:
    return (
        f"infra errors: {result.infra_errors} examples got no answer from the fleet (not wrong "
        f"answers; --resume or --retry-infra-failures runs them again); score over the "
        f"{result.answered} answered: {result.answered_score}"
    )
