"""``MIPROv2``: instructions and demo sets proposed, then searched with Bayesian optimization.

DSPy 2.4.17's algorithm, prompts, random draws and Optuna TPE search (``pip install
'tgispy[optimizers]'``), so the same LM answers and seed give the same program. What runs
concurrently here: the ``num_candidates`` demo-set bootstraps, the instruction proposals, and the
examples of each evaluation (``num_threads``). Trials stay sequential: each one's choice depends
on the scores before it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import textwrap
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tgispy._settings import current as current_settings
from tgispy.errors import ConfigError
from tgispy.primitives import Example
from tgispy.teleprompt._bootstrap import BootstrapFewShot
from tgispy.teleprompt._copro import get_signature, set_signature
from tgispy.teleprompt._labeled import LabeledFewShot
from tgispy.teleprompt._propose import GroundedProposer
from tgispy.teleprompt._search import (
    BestSoFar,
    Progress,
    compile_interruptible,
    gather_bounded,
    score_program,
    scripted_lm,
)
from tgispy.teleprompt._teleprompter import Teleprompter, check_module, check_trainset

__all__ = ["MIPROv2", "create_n_fewshot_demo_sets", "require_optuna"]

logger = logging.getLogger(__name__)

BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT = 3
LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT = 0

YELLOW = "\033[93m"
GREEN = "\033[92m"
BLUE = "\033[94m"
BOLD = "\033[1m"
ENDC = "\033[0m"


def require_optuna(name: str) -> Any:
    """Import optuna or raise an ImportError naming the extra."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(f"{name} needs optuna: pip install 'tgispy[optimizers]'") from exc
    return optuna


async def create_n_fewshot_demo_sets(  # noqa: PLR0917 - DSPy 2.4's signature
    student: Any,
    num_candidate_sets: int,
    trainset: list[Example],
    max_labeled_demos: int,
    max_bootstrapped_demos: int,
    metric: Callable[..., Any],
    teacher_settings: Mapping[str, Any],
    *,
    max_errors: int = 10,
    max_rounds: int = 1,
    labeled_sample: bool = True,
    min_num_samples: int = 1,
    metric_threshold: float | None = None,
    teacher: Any = None,
    include_non_bootstrapped: bool = True,
    seed: int = 0,
    concurrency: int | None = None,
) -> dict[int, list[list[Example]]]:
    """``num_candidate_sets`` demo sets per predictor, as random search makes them (DSPy 2.4).

    ``trainset`` is shuffled in place with ``random.Random(seed)`` (as DSPy 2.4 did; callers
    pass a copy). The sets are bootstrapped concurrently.
    """
    random.Random(seed).shuffle(trainset)

    async def make(set_seed: int) -> Any:
        trainset2 = list(trainset)
        if set_seed == -3 and include_non_bootstrapped:
            return student.reset_copy()  # zero-shot
        if set_seed == -2 and max_labeled_demos > 0 and include_non_bootstrapped:
            labeled = LabeledFewShot(k=max_labeled_demos)
            return labeled.compile(student, trainset=trainset2, sample=labeled_sample)
        if set_seed == -1:
            optimizer = BootstrapFewShot(
                metric=metric,
                max_errors=max_errors,
                max_bootstrapped_demos=max_bootstrapped_demos,
                max_labeled_demos=max_labeled_demos,
                teacher_settings=teacher_settings,
                max_rounds=max_rounds,
            )
            return await optimizer.acompile(student, teacher=teacher, trainset=trainset2)
        random.Random(set_seed).shuffle(trainset2)
        size = random.Random(set_seed).randint(min_num_samples, max_bootstrapped_demos)
        optimizer = BootstrapFewShot(
            metric=metric,
            max_errors=max_errors,
            metric_threshold=metric_threshold,
            max_bootstrapped_demos=size,
            max_labeled_demos=max_labeled_demos,
            teacher_settings=teacher_settings,
            max_rounds=max_rounds,
        )
        return await optimizer.acompile(student, teacher=teacher, trainset=trainset2)

    def job(set_seed: int) -> Callable[[], Any]:
        return lambda: make(set_seed)

    programs = await gather_bounded(
        [job(s) for s in range(-3, num_candidate_sets - 3)], concurrency
    )
    return {
        i: [program.predictors()[i].demos for program in programs]
        for i, _ in enumerate(student.predictors())
    }


class MIPROv2(Teleprompter):
    """Optimize instructions and few-shot demos together (DSPy 2.4.17's ``MIPROv2``).

    Args:
        metric: ``metric(example, prediction, trace=None)``.
        prompt_model: proposes instructions (default: the configured LM).
        task_model: runs the program (default: the configured LM).
        teacher_settings: settings for the bootstrap teacher runs.
        num_candidates: instruction candidates and demo sets per predictor.
        num_threads: examples in flight per evaluation.
        max_errors: failures tolerated while bootstrapping and evaluating.
        init_temperature: the proposals' temperature.
        verbose: log each candidate program.
        track_stats: attach ``trial_logs``, ``score``, ... to the best program.
        log_dir: save every evaluated candidate program there.
        metric_threshold: for numeric metrics, the bootstrap acceptance threshold.

    ``compile(..., requires_permission_to_run=True)`` prints DSPy's projected-LM-calls notice and
    asks for ``y`` on stdin first. Ctrl-C during ``compile`` returns the best program so far.

    Example:
        >>> from tgispy.evaluate import answer_exact_match
        >>> MIPROv2(metric=answer_exact_match, num_candidates=3).num_candidates
        3
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        metric: Callable[..., Any],
        prompt_model: Any = None,
        task_model: Any = None,
        teacher_settings: Mapping[str, Any] | None = None,
        num_candidates: int = 10,
        num_threads: int = 6,
        max_errors: int = 10,
        init_temperature: float = 0.5,
        verbose: bool = False,
        track_stats: bool = True,
        log_dir: str | None = None,
        metric_threshold: float | None = None,
    ) -> None:
        if metric is None or not callable(metric):
            raise ConfigError("MIPROv2 needs a metric(example, prediction, trace=None)")
        if num_candidates < 1:
            raise ConfigError(f"num_candidates must be >= 1, got {num_candidates!r}")
        self.num_candidates = num_candidates
        self.metric = metric
        self.init_temperature = init_temperature
        self.task_model = task_model
        self.prompt_model = prompt_model
        self.verbose = verbose
        self.track_stats = track_stats
        self.log_dir = log_dir
        self.teacher_settings: dict[str, Any] = dict(teacher_settings or {})
        self.prompt_model_total_calls = 0
        self.total_calls = 0
        self.num_threads = num_threads
        self.max_errors = max_errors
        self.metric_threshold = metric_threshold
        self.best = BestSoFar()

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        num_trials: int = 30,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        seed: int = 9,
        minibatch: bool = True,
        minibatch_size: int = 25,
        minibatch_full_eval_steps: int = 10,
        program_aware_proposer: bool = True,
        data_aware_proposer: bool = True,
        view_data_batch_size: int = 10,
        tip_aware_proposer: bool = True,
        fewshot_aware_proposer: bool = True,
        requires_permission_to_run: bool = True,
    ) -> Any:
        """The best program found (``student`` when the user declines to run)."""
        self.best = BestSoFar()
        options = dict(  # noqa: C408 - the compile keywords, once
            valset=valset,
            num_trials=num_trials,
            max_bootstrapped_demos=max_bootstrapped_demos,
            max_labeled_demos=max_labeled_demos,
            seed=seed,
            minibatch=minibatch,
            minibatch_size=minibatch_size,
            minibatch_full_eval_steps=minibatch_full_eval_steps,
            program_aware_proposer=program_aware_proposer,
            data_aware_proposer=data_aware_proposer,
            view_data_batch_size=view_data_batch_size,
            tip_aware_proposer=tip_aware_proposer,
            fewshot_aware_proposer=fewshot_aware_proposer,
            requires_permission_to_run=requires_permission_to_run,
        )
        return compile_interruptible(
            lambda: self.acompile(student, trainset=trainset, **options),  # type: ignore[arg-type]
            self.best,
            "MIPROv2",
        )

    def _permission(  # noqa: PLR0917
        self,
        student: Any,
        trainset: Sequence[Example],
        valset: Sequence[Example],
        num_trials: int,
        minibatch: bool,
        minibatch_size: int,
        minibatch_full_eval_steps: int,
        program_aware_proposer: bool,
    ) -> bool:
        n_pred = len(student.predictors())
        estimated_prompt_model_calls = (
            10 + self.num_candidates * n_pred + (0 if not program_aware_proposer else n_pred + 1)
        )
        if not program_aware_proposer:
            prompt_model_line = f"""{YELLOW}- Prompt Model: {BLUE}{BOLD}10{ENDC}{YELLOW} data summarizer calls + {BLUE}{BOLD}{self.num_candidates}{ENDC}{YELLOW} * {BLUE}{BOLD}{n_pred}{ENDC}{YELLOW} lm calls in program = {BLUE}{BOLD}{estimated_prompt_model_calls}{ENDC}{YELLOW} prompt model calls{ENDC}"""  # noqa: E501
        else:
            prompt_model_line = f"""{YELLOW}- Prompt Model: {BLUE}{BOLD}10{ENDC}{YELLOW} data summarizer calls + {BLUE}{BOLD}{self.num_candidates}{ENDC}{YELLOW} * {BLUE}{BOLD}{n_pred}{ENDC}{YELLOW} lm calls in program + ({BLUE}{BOLD}{n_pred + 1}{ENDC}{YELLOW}) lm calls in program aware proposer = {BLUE}{BOLD}{estimated_prompt_model_calls}{ENDC}{YELLOW} prompt model calls{ENDC}"""  # noqa: E501
        if not minibatch:
            task_calls = len(trainset) * num_trials
            task_model_line = f"""{YELLOW}- Task Model: {BLUE}{BOLD}{len(valset)}{ENDC}{YELLOW} examples in val set * {BLUE}{BOLD}{num_trials}{ENDC}{YELLOW} batches * {BLUE}{BOLD}# of LM calls in your program{ENDC}{YELLOW} = ({BLUE}{BOLD}{task_calls} * # of LM calls in your program{ENDC}{YELLOW}) task model calls{ENDC}"""  # noqa: E501
        else:
            task_calls = minibatch_size * num_trials + (
                len(trainset) * (num_trials // minibatch_full_eval_steps)
            )
            task_model_line = f"""{YELLOW}- Task Model: {BLUE}{BOLD}{minibatch_size}{ENDC}{YELLOW} examples in minibatch * {BLUE}{BOLD}{num_trials}{ENDC}{YELLOW} batches + {BLUE}{BOLD}{len(valset)}{ENDC}{YELLOW} examples in val set * {BLUE}{BOLD}{num_trials // minibatch_full_eval_steps}{ENDC}{YELLOW} full evals = {BLUE}{BOLD}{task_calls}{ENDC}{YELLOW} task model calls{ENDC}"""  # noqa: E501
        user_message = textwrap.dedent(f"""\
            {YELLOW}{BOLD}Projected Language Model (LM) Calls{ENDC}

            Please be advised that based on the parameters you have set, the maximum number of LM calls is projected as follows:

            
            {prompt_model_line}
            {task_model_line}

            {YELLOW}{BOLD}Estimated Cost Calculation:{ENDC}

            {YELLOW}Total Cost = (Number of calls to task model * (Avg Input Token Length per Call * Task Model Price per Input Token + Avg Output Token Length per Call * Task Model Price per Output Token) 
                        + (Number of calls to prompt model * (Avg Input Token Length per Call * Task Prompt Price per Input Token + Avg Output Token Length per Call * Prompt Model Price per Output Token).{ENDC}

            For a preliminary estimate of potential costs, we recommend you perform your own calculations based on the task
            and prompt models you intend to use. If the projected costs exceed your budget or expectations, you may consider:

            {YELLOW}- Reducing the number of trials (`num_trials`), the size of the valset, or the number of LM calls in your program.{ENDC}
            {YELLOW}- Using a cheaper task model to optimize the prompt.{ENDC}\n""")  # noqa: E501, W293, W291
        user_confirmation_message = textwrap.dedent(f"""\
            To proceed with the execution of this program, please confirm by typing {BLUE}'y'{ENDC} for yes or {BLUE}'n'{ENDC} for no.

            If you would like to bypass this confirmation step in future executions, set the {YELLOW}`requires_permission_to_run`{ENDC} flag to {YELLOW}`False`{ENDC} when calling compile.

            {YELLOW}Awaiting your input...{ENDC}
        """)  # noqa: E501
        print(user_message)
        sys.stdout.flush()
        print(user_confirmation_message)
        user_input = input("Do you wish to continue? (y/n): ").strip().lower()
        if user_input != "y":
            print("Compilation aborted by the user.")
            return False
        return True

    async def acompile(
        self,
        student: Any,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        num_trials: int = 30,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        seed: int = 9,
        minibatch: bool = True,
        minibatch_size: int = 25,
        minibatch_full_eval_steps: int = 10,
        program_aware_proposer: bool = True,
        data_aware_proposer: bool = True,
        view_data_batch_size: int = 10,
        tip_aware_proposer: bool = True,
        fewshot_aware_proposer: bool = True,
        requires_permission_to_run: bool = True,
    ) -> Any:
        """Async twin of :meth:`compile` (the permission prompt reads stdin in a thread)."""
        optuna = require_optuna("MIPROv2")
        check_module(student)
        trainset = check_trainset(trainset)
        random.seed(seed)
        if not trainset:
            raise ValueError("Trainset cannot be empty.")
        if not valset:
            if len(trainset) < 2:
                raise ValueError(
                    "Trainset must have at least 2 examples if no valset specified, or at least 1 "
                    "example with external validation set."
                )
            valset_size = min(500, max(1, int(len(trainset) * 0.80)))
            cutoff = len(trainset) - valset_size
            valset = trainset[cutoff:]
            trainset = trainset[:cutoff]
        else:
            valset = check_trainset(valset, name="valset")
        if minibatch and minibatch_size > len(valset):
            raise ValueError(
                "Minibatch size cannot exceed the size of the valset.  Note that your validation "
                f"set contains {len(valset)} examples.  Your train set contains {len(trainset)} "
                "examples."
            )
        if minibatch and num_trials < minibatch_full_eval_steps:
            raise ValueError(
                f"Number of trials (num_trials={num_trials}) must be greater than or equal to the "
                f"number of minibatch full eval steps (minibatch_full_eval_steps="
                f"{minibatch_full_eval_steps})."
            )
        if requires_permission_to_run:
            allowed = await asyncio.to_thread(
                self._permission,
                student,
                trainset,
                valset,
                num_trials,
                minibatch,
                minibatch_size,
                minibatch_full_eval_steps,
                program_aware_proposer,
            )
            if not allowed:
                return student

        random.seed(seed)
        _seed_numpy(seed)
        program = student.deepcopy()
        eval_kwargs = {"num_threads": self.num_threads, "max_errors": self.max_errors}
        task_lm = self.task_model or current_settings().lm

        if max_bootstrapped_demos == 0 and max_labeled_demos == 0:
            boot_for_gen = BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT
            labeled_for_gen = LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT
        else:
            boot_for_gen, labeled_for_gen = max_bootstrapped_demos, max_labeled_demos

        logger.info("MIPROv2 step 1: bootstrapping %d sets of demonstrations", self.num_candidates)
        trainset = list(trainset)  # shuffled in place below, as DSPy 2.4 shuffled its own list
        demo_candidates: Any = await create_n_fewshot_demo_sets(
            student=program,
            num_candidate_sets=self.num_candidates,
            trainset=trainset,
            max_labeled_demos=labeled_for_gen,
            max_bootstrapped_demos=boot_for_gen,
            metric=self.metric,
            teacher_settings=self.teacher_settings,
            max_errors=self.max_errors,
            metric_threshold=self.metric_threshold,
            seed=seed,
            concurrency=1 if scripted_lm(task_lm) else None,
        )

        logger.info("MIPROv2 step 2: proposing instruction candidates")
        proposer = await GroundedProposer.create(
            self.prompt_model,
            program,
            trainset,
            view_data_batch_size=view_data_batch_size,
            program_aware=program_aware_proposer,
            use_dataset_summary=data_aware_proposer,
            use_task_demos=fewshot_aware_proposer,
            use_tip=tip_aware_proposer,
            set_tip_randomly=tip_aware_proposer,
            use_instruct_history=False,
            set_history_randomly=False,
        )
        instruction_candidates = await proposer.propose_instructions_for_program(
            trainset=trainset,
            program=program,
            demo_candidates=demo_candidates,
            N=self.num_candidates,
            T=self.init_temperature,
            trial_logs={},
        )
        for i, pred in enumerate(program.predictors()):
            instruction_candidates[i][0] = get_signature(pred).instructions
            for j, instruction in enumerate(instruction_candidates[i]):
                logger.info("Predictor %d, instruction %d: %s", i, j, instruction)
        if max_bootstrapped_demos == 0 and max_labeled_demos == 0:
            demo_candidates = None

        best = self.best
        progress = Progress("MIPROv2", best)
        progress.expect(
            1 + num_trials + (num_trials // minibatch_full_eval_steps if minibatch else 0)
        )

        async def evaluate(batch_size: int, candidate: Any) -> float:
            devset = valset if batch_size >= len(valset) else _minibatch(valset, batch_size)
            score = await score_program(candidate, devset, self.metric, eval_kwargs)
            progress.done()
            return score

        best_scoring_trial = 0
        trial_logs: dict[int, dict[str, Any]] = {}
        total_eval_calls = 0
        param_score_dict: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        fully_evaled_param_combos: dict[str, dict[str, Any]] = {}
        try:
            default_score = await evaluate(len(valset), program)
            best_score = default_score
            best_program = program.deepcopy()
            best.offer(best_score, best_program)
            logger.info("Default program score: %s", default_score)

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
                study = optuna.create_study(direction="maximize", sampler=sampler)
            for _ in range(num_trials):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    trial = study.ask()
                number = trial.number + 1
                trial_logs[number] = {}
                candidate = program.deepcopy()
                chosen_params = []
                for i, p_new in enumerate(candidate.predictors()):
                    p_instructions = instruction_candidates[i]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        instruction_idx = trial.suggest_categorical(
                            f"{i}_predictor_instruction", range(len(p_instructions))
                        )
                        chosen_params.append(f"Predictor {i + 1}: Instruction {instruction_idx}")
                        if demo_candidates:
                            p_demos = demo_candidates[i]
                            demos_idx = trial.suggest_categorical(
                                f"{i}_predictor_demos", range(len(p_demos))
                            )
                            chosen_params.append(f"Predictor {i + 1}: Few-Shot Set {demos_idx}")
                    trial_logs[number][f"{i}_predictor_instruction"] = instruction_idx
                    if demo_candidates:
                        trial_logs[number][f"{i}_predictor_demos"] = demos_idx
                    set_signature(
                        p_new,
                        get_signature(p_new).with_instructions(p_instructions[instruction_idx]),
                    )
                    if demo_candidates:
                        p_new.demos = p_demos[demos_idx]
                trial_logs[number]["program_path"] = _save_candidate(
                    candidate, self.log_dir, number
                )
                trial_logs[number]["num_eval_calls"] = 0
                batch_size = minibatch_size if minibatch else len(valset)
                score = await evaluate(batch_size, candidate)
                categorical_key = ",".join(map(str, chosen_params))
                param_score_dict[categorical_key].append((score, candidate))
                log = trial_logs[number]
                log["num_eval_calls"] = batch_size
                log["full_eval"] = batch_size >= len(valset)
                log["score"] = score
                log["pruned"] = False
                total_eval_calls += batch_size
                log["total_eval_calls_so_far"] = total_eval_calls
                log["program"] = candidate.deepcopy()
                if score > best_score and log["full_eval"] and not minibatch:
                    best_score = score
                    best_scoring_trial = number
                    best_program = candidate.deepcopy()
                    best.offer(best_score, best_program)
                logger.info("Trial %d: score %s with %s", number, score, chosen_params)

                if minibatch and (number % minibatch_full_eval_steps == 0 or number == num_trials):
                    log["mb_score"] = score
                    log["mb_program_path"] = log["program_path"]
                    top_program, mean, combo_key = _highest_avg(
                        param_score_dict, fully_evaled_param_combos
                    )
                    full_val_score = await evaluate(len(valset), top_program)
                    fully_evaled_param_combos[combo_key] = {
                        "program": top_program,
                        "score": full_val_score,
                    }
                    total_eval_calls += len(valset)
                    log["total_eval_calls_so_far"] = total_eval_calls
                    log["full_eval"] = True
                    log["program_path"] = _save_candidate(
                        top_program, self.log_dir, number, note="full_eval"
                    )
                    log["score"] = full_val_score
                    logger.info("Full eval of the top program (avg %s): %s", mean, full_val_score)
                    if full_val_score > best_score:
                        best_score = full_val_score
                        best_scoring_trial = number
                        best_program = top_program.deepcopy()
                        best.offer(best_score, best_program)
                study.tell(trial, score)
        finally:
            progress.close()

        logger.info("Best score %s on trial %d", best_score, best_scoring_trial)
        if best_program is not None and self.track_stats:
            best_program.trial_logs = trial_logs
            best_program.score = best_score
            best_program.prompt_model_total_calls = self.prompt_model_total_calls
            best_program.total_calls = self.total_calls
        return best_program


def _seed_numpy(seed: int) -> None:
    # DSPy 2.4 seeded numpy's global generator too (optuna brings numpy along).
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)


def _minibatch(devset: Sequence[Example], batch_size: int) -> list[Example]:
    batch_size = min(batch_size, len(devset))
    return [devset[i] for i in random.sample(range(len(devset)), batch_size)]


def _highest_avg(
    param_score_dict: Mapping[str, list[tuple[float, Any]]],
    fully_evaled: Mapping[str, Any],
) -> tuple[Any, float, str]:
    results = []
    for key, values in param_score_dict.items():
        scores = [v[0] for v in values]
        results.append((key, sum(scores) / len(scores), values[0][1]))
    ranked = sorted(results, key=lambda x: x[1], reverse=True)
    for key, mean, program in ranked:
        if key not in fully_evaled:
            return program, mean, key
    key, mean, program = ranked[-1]
    return program, mean, key


def _save_candidate(
    program: Any, log_dir: str | None, trial_num: int, note: str | None = None
) -> str | None:
    if log_dir is None:
        return None
    directory = Path(log_dir) / "evaluated_programs"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (f"program_{trial_num}_{note}" if note else f"program_{trial_num}")
    program.save(path)
    return str(path)
