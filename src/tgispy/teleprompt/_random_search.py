"""``BootstrapFewShotWithRandomSearch``: bootstrap several candidate programs, keep the best."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.evaluate._evaluate import Evaluate
from tgispy.evaluate._runner import run_interruptible
from tgispy.primitives import Example
from tgispy.teleprompt._bootstrap import BootstrapFewShot
from tgispy.teleprompt._labeled import LabeledFewShot
from tgispy.teleprompt._teleprompter import Teleprompter, check_module, check_trainset

__all__ = ["BootstrapFewShotWithRandomSearch", "BootstrapRS"]

logger = logging.getLogger(__name__)


class BootstrapFewShotWithRandomSearch(Teleprompter):
    """Try a zero-shot, a labeled-only and several bootstrapped candidates; keep the best on valset.

    Candidates, as in DSPy 2.4: seed -3 is the student without demos, -2 ``LabeledFewShot``,
    -1 ``BootstrapFewShot`` on the training set as given, and each seed ``s >= 0`` a
    ``BootstrapFewShot`` on the training set shuffled with ``random.Random(s)`` and with
    ``random.Random(s).randint(1, max_bootstrapped_demos)`` bootstrapped demos. Each is scored
    with :class:`~tgispy.Evaluate` (``num_threads`` in flight); the best program gets
    ``candidate_programs``: ``(score, subscores, seed, program)`` from best to worst.

    Args:
        metric: ``metric(example, prediction, trace=None)``.
        teacher_settings: settings for the teachers' runs.
        max_bootstrapped_demos: the most augmented demos a candidate gets.
        max_labeled_demos: demos per predictor in all.
        max_rounds: bootstrap rounds.
        num_candidate_programs: how many shuffled candidates (seeds ``0 .. n-1``).
        num_threads: examples in flight when scoring a candidate.
        max_errors: failures tolerated while scoring a candidate.
        stop_at_score: stop as soon as a candidate scores at least this.
        metric_threshold: passed to ``BootstrapFewShot``.

    Example:
        >>> optimizer = BootstrapFewShotWithRandomSearch(metric=lambda e, p, t=None: True,
        ...                                              num_candidate_programs=2)
        >>> optimizer.num_candidate_sets
        2
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        metric: Callable[..., Any],
        teacher_settings: Mapping[str, Any] | None = None,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        max_rounds: int = 1,
        num_candidate_programs: int = 16,
        num_threads: int = 6,
        max_errors: int = 10,
        stop_at_score: float | None = None,
        metric_threshold: float | None = None,
    ) -> None:
        if metric is None or not callable(metric):
            raise ConfigError("BootstrapFewShotWithRandomSearch needs a metric(example, pred)")
        if isinstance(max_bootstrapped_demos, bool) or not isinstance(max_bootstrapped_demos, int):
            raise ConfigError(
                f"max_bootstrapped_demos must be an int, got {max_bootstrapped_demos!r}"
            )
        if max_bootstrapped_demos < 1:
            raise ConfigError("max_bootstrapped_demos must be >= 1 for a random search")
        self.metric = metric
        self.teacher_settings: dict[str, Any] = dict(teacher_settings or {})
        self.max_rounds = max_rounds
        self.num_threads = num_threads
        self.stop_at_score = stop_at_score
        self.metric_threshold = metric_threshold
        self.min_num_samples = 1
        self.max_num_samples = max_bootstrapped_demos
        self.max_errors = max_errors
        self.num_candidate_sets = num_candidate_programs
        self.max_labeled_demos = max_labeled_demos
        logger.info(
            "Going to sample between %d and %d traces per predictor.",
            self.min_num_samples,
            self.max_num_samples,
        )
        logger.info("Will attempt to bootstrap %d candidate sets.", self.num_candidate_sets)

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        teacher: Any = None,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        restrict: Iterable[int] | None = None,
        labeled_sample: bool = True,
    ) -> Any:
        """The best candidate program, with ``candidate_programs`` attached."""
        return run_interruptible(
            lambda: self.acompile(
                student,
                teacher=teacher,
                trainset=trainset,
                valset=valset,
                restrict=restrict,
                labeled_sample=labeled_sample,
            )
        )

    async def acompile(
        self,
        student: Any,
        *,
        teacher: Any = None,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        restrict: Iterable[int] | None = None,
        labeled_sample: bool = True,
    ) -> Any:
        """Async twin of :meth:`compile`."""
        check_module(student)
        self.trainset = check_trainset(trainset)
        self.valset = check_trainset(valset, name="valset") if valset else self.trainset
        allowed = None if restrict is None else set(restrict)

        scores: list[float] = []
        score_data: list[tuple[float, list[Any], int, Any]] = []
        best_program: Any = None
        for seed in range(-3, self.num_candidate_sets):
            if allowed is not None and seed not in allowed:
                continue
            trainset_copy = list(self.trainset)
            if seed == -3:
                program = student.reset_copy()
            elif seed == -2:
                labeled = LabeledFewShot(k=self.max_labeled_demos)
                program = labeled.compile(student, trainset=trainset_copy, sample=labeled_sample)
            else:
                size = self.max_num_samples
                if seed >= 0:
                    random.Random(seed).shuffle(trainset_copy)
                    size = random.Random(seed).randint(self.min_num_samples, self.max_num_samples)
                optimizer = BootstrapFewShot(
                    metric=self.metric,
                    metric_threshold=self.metric_threshold,
                    max_bootstrapped_demos=size,
                    max_labeled_demos=self.max_labeled_demos,
                    teacher_settings=self.teacher_settings,
                    max_rounds=self.max_rounds,
                )
                program = await optimizer.acompile(student, teacher=teacher, trainset=trainset_copy)

            evaluate = Evaluate(
                devset=self.valset,
                metric=self.metric,
                num_threads=self.num_threads,
                max_errors=self.max_errors,
                display_table=False,
                display_progress=True,
            )
            score, subscores = await evaluate.acall(program, return_all_scores=True)

            if hasattr(program, "_suggest_failures"):
                score = score - program._suggest_failures * 0.2
            if hasattr(program, "_assert_failures"):
                score = 0 if program._assert_failures > 0 else score

            if not scores or score > max(scores):
                logger.info("New best score: %s for seed %d", score, seed)
                best_program = program
            scores.append(score)
            logger.info("Scores so far: %s; best so far: %s", scores, max(scores))
            score_data.append((score, subscores, seed, program))

            if self.stop_at_score is not None and score >= self.stop_at_score:
                logger.info(
                    "Stopping early because score %s is >= stop_at_score %s",
                    score,
                    self.stop_at_score,
                )
                break

        if best_program is None:
            raise ConfigError(f"restrict={sorted(allowed or [])} selected no candidate seed")
        best_program.candidate_programs = sorted(score_data, key=lambda x: x[0], reverse=True)
        logger.info("%d candidate programs found.", len(best_program.candidate_programs))
        return best_program


BootstrapRS = BootstrapFewShotWithRandomSearch
