"""``BootstrapFewShot``: demos from the teacher's own successful traces (DSPy 2.4 semantics).

For each training example (in order) the teacher -- by default the student with labeled demos --
runs with tracing on; when the metric accepts its prediction, every predictor call of the trace
becomes an *augmented* demo of that predictor. Rounds after the first sample at temperature
``0.7 + 0.001 * round``. Each predictor of the compiled student gets up to
``max_bootstrapped_demos`` augmented demos, then labeled examples that were not bootstrapped fill
it up to ``max_labeled_demos``.

Concurrency never changes the result: examples run a few at a time, but are accepted strictly in
training-set order, and no example starts that a one-at-a-time run would not have run.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tgispy._settings import context
from tgispy._settings import current as current_settings
from tgispy.errors import ConfigError
from tgispy.evaluate._runner import async_entry, run_interruptible
from tgispy.primitives import Example
from tgispy.teleprompt._labeled import LabeledFewShot
from tgispy.teleprompt._teleprompter import Teleprompter, check_module, check_trainset

__all__ = ["BootstrapFewShot"]

logger = logging.getLogger(__name__)

#: examples bootstrapped at once when the teacher runs on the async core (``num_threads=None``)
AUTO_CONCURRENCY = 8


@dataclass
class _Attempt:
    """One teacher run on one training example."""

    index: int
    success: bool = False
    demos: list[tuple[str, Example]] = field(default_factory=list)
    error: Exception | None = None


class BootstrapFewShot(Teleprompter):
    """Compose each predictor's demos from bootstrapped traces and labeled examples.

    Args:
        metric: ``metric(example, prediction, trace)``; a trace is kept when it is truthy (or
            ``>= metric_threshold``). ``None`` keeps every trace.
        metric_threshold: the minimum metric value, for numeric metrics.
        teacher_settings: settings for the teacher's runs (e.g. ``{"lm": bigger_lm}``).
        max_bootstrapped_demos: augmented demos per predictor.
        max_labeled_demos: demos per predictor in all (labeled ones fill up).
        max_rounds: passes over the training set; later passes sample at temperature
            ``0.7 + 0.001 * round``.
        max_errors: the failed teacher runs tolerated; the next one is raised.
        num_threads: training examples run at once. ``None`` (default): 8 when the teacher runs
            on the async core and the LM does not answer from an ordered script (a ``DummyLM``
            with a list), else 1. Each concurrent run uses its own copy of the teacher.

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.evaluate import answer_exact_match
        >>> from tgispy.utils.dummies import DummyLM
        >>> dspy.configure(lm=DummyLM({"2+2": "4"}))
        >>> trainset = [dspy.Example(question="2+2?", answer="4").with_inputs("question")]
        >>> optimizer = BootstrapFewShot(metric=answer_exact_match, max_labeled_demos=0)
        >>> compiled = optimizer.compile(dspy.Predict("question -> answer"), trainset=trainset)
        >>> compiled.demos[0].augmented, compiled._compiled
        (True, True)
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        metric: Callable[..., Any] | None = None,
        metric_threshold: float | None = None,
        teacher_settings: Mapping[str, Any] | None = None,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        max_rounds: int = 1,
        max_errors: int = 5,
        *,
        num_threads: int | None = None,
    ) -> None:
        for name, value in (
            ("max_bootstrapped_demos", max_bootstrapped_demos),
            ("max_labeled_demos", max_labeled_demos),
            ("max_rounds", max_rounds),
            ("max_errors", max_errors),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an int >= 0, got {value!r}")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ConfigError(f"num_threads must be an int >= 1 or None, got {num_threads!r}")
        if metric is not None and not callable(metric):
            raise ConfigError(f"metric must be callable, got {type(metric).__name__}")
        self.metric = metric
        self.metric_threshold = metric_threshold
        self.teacher_settings: dict[str, Any] = dict(teacher_settings or {})
        self.max_bootstrapped_demos = max_bootstrapped_demos
        self.max_labeled_demos = max_labeled_demos
        self.max_rounds = max_rounds
        self.max_errors = max_errors
        self.num_threads = num_threads
        self.error_count = 0

    # ---- faces ------------------------------------------------------------------------------
    def compile(  # type: ignore[override]
        self, student: Any, *, teacher: Any = None, trainset: Sequence[Example]
    ) -> Any:
        """A compiled copy of ``student`` (``_compiled=True``); ``student`` is not changed."""
        return run_interruptible(lambda: self.acompile(student, teacher=teacher, trainset=trainset))

    async def acompile(
        self, student: Any, *, teacher: Any = None, trainset: Sequence[Example]
    ) -> Any:
        """Async twin of :meth:`compile`."""
        check_module(student)
        if teacher is not None:
            check_module(teacher, name="teacher")
        self.trainset = check_trainset(trainset)
        self.error_count = 0
        self._prepare_student_and_teacher(student, teacher)
        self._prepare_predictor_mappings()
        self._check_lm()
        await self._bootstrap()
        self.student = self._train()
        self.student._compiled = True
        # DSPy 2.4 set these on every compiled student (assertion bookkeeping).
        self.student._assert_failures = 0
        self.student._suggest_failures = 0
        return self.student

    # ---- preparation (DSPy 2.4) -------------------------------------------------------------
    def _prepare_student_and_teacher(self, student: Any, teacher: Any) -> None:
        self.student = student.reset_copy()
        self.teacher = teacher.deepcopy() if teacher is not None else student.reset_copy()
        if getattr(self.student, "_compiled", False):
            raise ConfigError(
                "the student is already compiled; pass the uncompiled program as the student "
                "(a compiled one can be the teacher: compile(student, teacher=compiled, ...))"
            )
        if self.max_labeled_demos and not getattr(self.teacher, "_compiled", False):
            labeled = LabeledFewShot(k=self.max_labeled_demos)
            self.teacher = labeled.compile(self.teacher.reset_copy(), trainset=self.trainset)

    def _prepare_predictor_mappings(self) -> None:
        student, teacher = self.student, self.teacher
        student_named = student.named_predictors()
        teacher_named = teacher.named_predictors()
        if len(student_named) != len(teacher_named):
            raise ConfigError(
                f"student and teacher must have the same predictors; the student has "
                f"{[n for n, _ in student_named]}, the teacher {[n for n, _ in teacher_named]}"
            )
        name2predictor: dict[str, Any] = {}
        predictor2name: dict[int, str] = {}
        for (name1, predictor1), (name2, predictor2) in zip(
            student_named, teacher_named, strict=True
        ):
            if name1 != name2:
                raise ConfigError(
                    f"student and teacher must have the same program structure: predictor "
                    f"{name1!r} of the student is {name2!r} in the teacher"
                )
            if not predictor1.signature.equals(predictor2.signature):
                raise ConfigError(
                    f"student and teacher must have the same signatures; {name1!r} differs: "
                    f"{predictor1.signature.signature!r} vs {predictor2.signature.signature!r}"
                )
            if predictor1 is predictor2:
                raise ConfigError("student and teacher must be different objects")
            name2predictor[name1] = None
            predictor2name[id(predictor1)] = name1
            predictor2name[id(predictor2)] = name2
        self.name2predictor = name2predictor
        self.predictor2name = predictor2name

    def _teacher_lm(self) -> Any:
        lm = self.teacher_settings.get("lm")
        return lm if lm is not None else current_settings().lm

    def _check_lm(self) -> None:
        if self._teacher_lm() is not None:
            return
        if all(p.lm is not None for p in self.teacher.predictors()):
            return
        raise ConfigError(
            "No LM is loaded for the teacher. Configure one first, e.g. "
            "tgispy.configure(lm=tgispy.HFClientTGI(model=..., port=8080, url=...)), or pass "
            "teacher_settings={'lm': ...}"
        )

    def _concurrency(self) -> int:
        if self.num_threads is not None:
            return self.num_threads
        if async_entry(self.teacher) is None:
            return 1  # a sync-only teacher may not be thread-safe; DSPy ran it sequentially
        lms = [self._teacher_lm(), *(p.lm for p in self.teacher.predictors())]
        if any(isinstance(getattr(lm, "answers", None), list) for lm in lms):
            return 1  # answers scripted in call order: run in order to keep them in order
        return AUTO_CONCURRENCY

    # ---- bootstrapping ----------------------------------------------------------------------
    async def _bootstrap(self, *, max_bootstraps: int | None = None) -> None:
        max_bootstraps = max_bootstraps or self.max_bootstrapped_demos
        bootstrapped: dict[int, bool] = {}
        self.name2traces: dict[str, list[Example]] = {name: [] for name in self.name2predictor}
        concurrency = self._concurrency()
        ran = 0
        for round_idx in range(self.max_rounds):
            ran = await self._bootstrap_round(round_idx, bootstrapped, max_bootstraps, concurrency)
        logger.info(
            "Bootstrapped %d full traces after %d examples in round %d.",
            len(bootstrapped),
            ran,
            self.max_rounds - 1,
        )
        # The training examples that were not bootstrapped are the labeled-demo pool.
        self.validation = [x for idx, x in enumerate(self.trainset) if idx not in bootstrapped]
        random.Random(0).shuffle(self.validation)

    async def _bootstrap_round(
        self,
        round_idx: int,
        bootstrapped: dict[int, bool],
        max_bootstraps: int,
        concurrency: int,
    ) -> int:
        """One pass over the training set; returns how far it went (DSPy's ``example_idx + 1``)."""
        pending = [i for i in range(len(self.trainset)) if i not in bootstrapped]
        shared = concurrency == 1
        tasks: dict[int, asyncio.Task[_Attempt]] = {}
        done: dict[int, _Attempt] = {}
        launch_pos = resolve_pos = 0
        reached = 0
        bar = _progress(len(self.trainset), round_idx)
        try:
            while resolve_pos < len(pending) and len(bootstrapped) < max_bootstraps:
                # Start examples while even all of them succeeding would not exceed the budget:
                # exactly the examples a sequential run would have started.
                tentative = sum(1 for a in done.values() if a.success)
                while (
                    launch_pos < len(pending)
                    and len(tasks) < concurrency
                    and len(bootstrapped) + tentative + len(tasks) < max_bootstraps
                ):
                    index = pending[launch_pos]
                    tasks[index] = asyncio.create_task(self._attempt(index, round_idx, shared))
                    launch_pos += 1
                finished, _ = await asyncio.wait(
                    tasks.values(), return_when=asyncio.FIRST_COMPLETED
                )
                for task in finished:
                    attempt = task.result()
                    del tasks[attempt.index]
                    done[attempt.index] = attempt
                # Accept results strictly in training-set order.
                while resolve_pos < len(pending) and pending[resolve_pos] in done:
                    attempt = done.pop(pending[resolve_pos])
                    resolve_pos += 1
                    reached = attempt.index + 1
                    if bar is not None:
                        bar.update(1)
                    self._record(attempt, bootstrapped)
                    if len(bootstrapped) >= max_bootstraps:
                        break
        finally:
            for task in tasks.values():
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks.values(), return_exceptions=True)
            if bar is not None:
                bar.close()
        return reached

    def _record(self, attempt: _Attempt, bootstrapped: dict[int, bool]) -> None:
        if attempt.error is not None:
            self.error_count += 1
            example = self.trainset[attempt.index]
            if self.error_count >= self.max_errors:
                attempt.error.add_note(
                    f"BootstrapFewShot stopped: {self.error_count} teacher runs failed "
                    f"(max_errors={self.max_errors}); the last one was on trainset"
                    f"[{attempt.index}]"
                )
                raise attempt.error
            logger.error(
                "Failed to run or to evaluate example %s with %s due to %s: %s",
                example,
                self.metric,
                type(attempt.error).__name__,
                attempt.error,
            )
            return
        if attempt.success:
            bootstrapped[attempt.index] = True
            for name, demo in attempt.demos:
                self.name2traces[name].append(demo)

    async def _attempt(self, index: int, round_idx: int, shared: bool) -> _Attempt:
        example = self.trainset[index]
        # A concurrent run gets its own teacher: the demos are edited for the run.
        teacher = self.teacher if shared else self.teacher.deepcopy()
        if shared:
            predictor2name = self.predictor2name
        else:
            predictor2name = {id(p): name for name, p in teacher.named_predictors()}
        try:
            with context(trace=[], **self.teacher_settings):
                lm = current_settings().lm
                new_settings: dict[str, Any] = {}
                if round_idx > 0 and lm is not None:
                    new_settings["lm"] = lm.copy(temperature=0.7 + 0.001 * round_idx)
                with context(**new_settings):
                    saved = {}
                    for name, predictor in teacher.named_predictors():
                        saved[name] = predictor.demos
                        # The example must not be its own demo.
                        predictor.demos = [x for x in predictor.demos if x != example]
                    try:
                        prediction = await _run_program(teacher, example.inputs())
                    finally:
                        for name, predictor in teacher.named_predictors():
                            predictor.demos = saved[name]
                    trace = list(current_settings().trace or [])
                if self.metric is not None:
                    metric_val = self.metric(example, prediction, trace)
                    if asyncio.iscoroutine(metric_val):
                        metric_val = await metric_val
                    if self.metric_threshold:
                        success = bool(metric_val >= self.metric_threshold)
                    else:
                        success = bool(metric_val)
                else:
                    success = True
        except Exception as exc:
            return _Attempt(index, error=exc)
        attempt = _Attempt(index, success=success)
        if success:
            for predictor, inputs, outputs in trace:
                name = predictor2name.get(id(predictor))
                if name is None:
                    continue  # a predictor outside the program's parameters (DSPy skipped it too)
                attempt.demos.append((name, Example(augmented=True, **inputs, **outputs)))
        return attempt

    # ---- the compiled student (DSPy 2.4) ----------------------------------------------------
    def _train(self) -> Any:
        rng = random.Random(0)
        raw_demos = self.validation
        release = current_settings().get("release", 0) or 0
        for name, predictor in self.student.named_predictors():
            augmented_demos = self.name2traces[name][: self.max_bootstrapped_demos]
            sample_size = min(self.max_labeled_demos - len(augmented_demos), len(raw_demos))
            sample_size = max(0, sample_size)
            raw_demos = rng.sample(raw_demos, sample_size)
            if release >= 20230928:
                predictor.demos = raw_demos + augmented_demos
            else:
                predictor.demos = augmented_demos + raw_demos
        return self.student


async def _run_program(program: Any, inputs: Example) -> Any:
    entry = async_entry(program)
    kwargs = dict(inputs.items())
    if entry is not None:
        return await entry(**kwargs)
    # A sync-only program runs in a worker thread; to_thread carries the context (trace, lm).
    return await asyncio.to_thread(program, **kwargs)


def _progress(total: int, round_idx: int) -> Any:
    import tqdm

    # disable=None: a bar in terminals only, as DSPy 2.4 showed one per round.
    return tqdm.tqdm(total=total, desc=f"Bootstrapping (round {round_idx})", disable=None)
