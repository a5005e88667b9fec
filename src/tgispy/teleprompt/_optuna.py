"""``BootstrapFewShotWithOptuna``: bootstrap demos once, then let Optuna pick one per predictor."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tgispy.primitives import Example
from tgispy.teleprompt._bootstrap import BootstrapFewShot
from tgispy.teleprompt._mipro_v2 import require_optuna
from tgispy.teleprompt._search import (
    BestSoFar,
    Progress,
    compile_interruptible,
    gather_bounded,
    score_program,
    scripted_lm,
)
from tgispy.teleprompt._teleprompter import Teleprompter, check_module, check_trainset

__all__ = ["BootstrapFewShotWithOptuna"]

logger = logging.getLogger(__name__)


class BootstrapFewShotWithOptuna(Teleprompter):
    """Bootstrap demos, then search which single demo each predictor keeps (DSPy 2.4).

    ``BootstrapFewShot(max_bootstrapped_demos=max_demos)`` compiles the student once; each of
    ``num_candidate_programs`` Optuna trials gives every predictor one of those demos and scores
    the program on ``valset``. Needs optuna: ``pip install 'tgispy[optimizers]'``.

    Args:
        metric: ``metric(example, prediction, trace=None)``.
        teacher_settings: settings for the teacher's runs.
        max_bootstrapped_demos: kept for DSPy 2.4 compatibility (``compile``'s ``max_demos``
            sets the bootstrap size).
        max_labeled_demos: labeled demos of the bootstrap.
        max_rounds: bootstrap rounds.
        num_candidate_programs: Optuna trials.
        num_threads: examples in flight per evaluation.
        trial_concurrency: trials run at once (DSPy 2.4 ran one at a time; Optuna's default
            sampler is unseeded, so the search was never reproducible anyway).

    Example:
        >>> from tgispy.evaluate import answer_exact_match
        >>> optimizer = BootstrapFewShotWithOptuna(answer_exact_match, num_candidate_programs=4)
        >>> optimizer.num_candidate_sets
        4
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
        *,
        trial_concurrency: int = 4,
    ) -> None:
        self._optuna = require_optuna("BootstrapFewShotWithOptuna")
        self.metric = metric
        self.teacher_settings: dict[str, Any] = dict(teacher_settings or {})
        self.max_rounds = max_rounds
        self.num_threads = num_threads
        self.min_num_samples = 1
        self.max_num_samples = max_bootstrapped_demos
        self.num_candidate_sets = num_candidate_programs
        self.max_labeled_demos = max_labeled_demos
        self.trial_concurrency = trial_concurrency
        self.best = BestSoFar()
        logger.info(
            "Going to sample between %d and %d traces per predictor.",
            self.min_num_samples,
            self.max_num_samples,
        )
        logger.info("Will attempt to train %d candidate sets.", self.num_candidate_sets)

    def _candidate(self, trial: Any) -> Any:
        program2 = self.student.reset_copy()
        for (name, compiled_predictor), (_, predictor2) in zip(
            self.compiled_teleprompter.named_predictors(), program2.named_predictors(), strict=True
        ):
            all_demos = compiled_predictor.demos
            demo_index = trial.suggest_int(f"demo_index_for_{name}", 0, len(all_demos) - 1)
            predictor2.demos = [dict(all_demos[demo_index])]
        return program2

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        teacher: Any = None,
        max_demos: int,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
    ) -> Any:
        """The best trial's program (a copy of ``student`` with one demo per predictor)."""
        self.best = BestSoFar()
        return compile_interruptible(
            lambda: self.acompile(
                student, teacher=teacher, max_demos=max_demos, trainset=trainset, valset=valset
            ),
            self.best,
            "BootstrapFewShotWithOptuna",
        )

    async def acompile(
        self,
        student: Any,
        *,
        teacher: Any = None,
        max_demos: int,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
    ) -> Any:
        """Async twin of :meth:`compile`."""
        optuna = self._optuna
        check_module(student)
        self.trainset = check_trainset(trainset)
        self.valset = check_trainset(valset, name="valset") if valset else self.trainset
        self.student = student.reset_copy()
        self.teacher = teacher.deepcopy() if teacher is not None else student.reset_copy()
        bootstrap = BootstrapFewShot(
            metric=self.metric,
            max_bootstrapped_demos=max_demos,
            max_labeled_demos=self.max_labeled_demos,
            teacher_settings=self.teacher_settings,
            max_rounds=self.max_rounds,
        )
        self.compiled_teleprompter = await bootstrap.acompile(
            self.student, teacher=self.teacher, trainset=self.trainset
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize")
        progress = Progress("BootstrapFewShotWithOptuna", self.best)
        progress.expect(self.num_candidate_sets)
        eval_kwargs = {"num_threads": self.num_threads}

        async def one_trial() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                trial = study.ask()
            program2 = self._candidate(trial)
            score = await score_program(program2, self.valset, self.metric, eval_kwargs)
            trial.set_user_attr("program", program2)
            study.tell(trial, score)
            self.best.offer(score, program2)
            progress.done()

        limit = 1 if scripted_lm() else self.trial_concurrency
        try:
            await gather_bounded([one_trial] * self.num_candidate_sets, limit)
        finally:
            progress.close()
        best_program = study.trials[study.best_trial.number].user_attrs["program"]
        logger.info("Best score: %s", study.best_value)
        return best_program
