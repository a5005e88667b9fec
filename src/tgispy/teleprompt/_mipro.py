"""``MIPRO`` (deprecated in DSPy 2.4 for ``MIPROv2``) and ``BayesianSignatureOptimizer``.

DSPy 2.4.17's first MIPRO: proposes instruction *and* prefix candidates from data observations
and bootstrapped examples, then searches them with Optuna's TPE sampler (``pip install
'tgispy[optimizers]'``). Same prompts, trials and program as DSPy 2.4.17 from the same LM
answers and seed; here the demo-set bootstraps and the proposals run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import sys
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tgispy._settings import context
from tgispy._settings import current as current_settings
from tgispy.adapters import passages2text
from tgispy.adapters._template import template_for
from tgispy.errors import ConfigError
from tgispy.predict._predict import Predict
from tgispy.primitives import Completions, Example
from tgispy.signatures import InputField, OutputField, Signature
from tgispy.teleprompt._bootstrap import BootstrapFewShot
from tgispy.teleprompt._copro import BasicGenerateInstruction, get_signature, set_signature
from tgispy.teleprompt._mipro_v2 import BLUE, BOLD, ENDC, YELLOW, require_optuna
from tgispy.teleprompt._propose import (
    DatasetDescriptor,
    DatasetDescriptorWithPriorObservations,
    ObservationSummarizer,
)
from tgispy.teleprompt._search import (
    BestSoFar,
    Progress,
    compile_interruptible,
    gather_bounded,
    score_program,
    scripted_lm,
)
from tgispy.teleprompt._teleprompter import Teleprompter, check_module, check_trainset

__all__ = ["MIPRO", "BayesianSignatureOptimizer"]

logger = logging.getLogger(__name__)

RED = "\033[91m"

_PREFIX_DESC = (
    "The string at the end of the prompt, which will help the model start solving the task"
)


class BasicGenerateInstructionWithDataObservations(Signature):
    """You are an instruction optimizer for large language models. I will give you a ``signature`` of fields (inputs and outputs) in English.  I will also give you some ``observations`` I have made about the dataset and task. Your task is to propose an instruction that will lead a good language model to perform the task well. Don't be afraid to be creative."""  # noqa: E501

    basic_instruction = InputField(desc="The initial instructions before optimization")
    observations = InputField(desc="Observations about the dataset and task")
    proposed_instruction = OutputField(desc="The improved instructions for the language model")
    proposed_prefix_for_output_field = OutputField(desc=_PREFIX_DESC)


class BasicGenerateInstructionWithExamples(Signature):
    """You are an instruction optimizer for large language models. I will give you a ``signature`` of fields (inputs and outputs) in English. Specifically, I will also provide you with the current ``basic instruction`` that is being used for this task. I will also provide you with some ``examples`` of the expected inputs and outputs.

    Your task is to propose an instruction that will lead a good language model to perform the task well. Don't be afraid to be creative."""  # noqa: E501

    basic_instruction = InputField(desc="The initial instructions before optimization")
    examples = InputField(format=passages2text, desc="Example(s) of the task")
    proposed_instruction = OutputField(desc="The improved instructions for the language model")
    proposed_prefix_for_output_field = OutputField(desc=_PREFIX_DESC)


class BasicGenerateInstructionWithExamplesAndDataObservations(Signature):
    """You are an instruction optimizer for large language models. I will give you a ``signature`` of fields (inputs and outputs) in English. Specifically, I will give you some ``observations`` I have made about the dataset and task, along with some ``examples`` of the expected inputs and outputs. I will also provide you with the current ``basic instruction`` that is being used for this task.

    Your task is to propose a new improved instruction and prefix for the output field that will lead a good language model to perform the task well. Don't be afraid to be creative."""  # noqa: E501

    observations = InputField(desc="Observations about the dataset and task")
    examples = InputField(format=passages2text, desc="Example(s) of the task")
    basic_instruction = InputField(desc="The initial instructions before optimization")
    proposed_instruction = OutputField(desc="The improved instructions for the language model")
    proposed_prefix_for_output_field = OutputField(desc=_PREFIX_DESC)


def _example_string(signature: Any, example: Any) -> str:
    return "\n".join(
        f"{f.label}{f.separator}{example.get(f.key)}" for f in template_for(signature).fields
    )


class MIPRO(Teleprompter):
    """DSPy 2.4.17's (deprecated) ``MIPRO``: instruction and prefix candidates, TPE search.

    Args:
        metric: ``metric(example, prediction, trace=None)``.
        prompt_model: proposes instructions (default: the LM configured at construction).
        task_model: runs the program (default: the LM configured at construction).
        teacher_settings: settings for the bootstrap teacher runs.
        num_candidates: candidates (instructions and demo sets) per predictor.
        init_temperature: the proposals' temperature.
        verbose: log candidate programs.
        track_stats: attach ``trial_logs`` to the best program.
        view_data_batch_size: examples per data-observation prompt.

    ``compile`` prints DSPy's deprecation and projected-calls notices (and asks for ``y`` with
    ``requires_permission_to_run=True``). Ctrl-C during ``compile`` returns the best so far.

    Example:
        >>> from tgispy.evaluate import answer_exact_match
        >>> MIPRO(metric=answer_exact_match, num_candidates=3).num_candidates
        3
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        metric: Callable[..., Any],
        prompt_model: Any = None,
        task_model: Any = None,
        teacher_settings: Mapping[str, Any] | None = None,
        num_candidates: int = 10,
        init_temperature: float = 1.0,
        verbose: bool = False,
        track_stats: bool = True,
        view_data_batch_size: int = 10,
    ) -> None:
        if metric is None or not callable(metric):
            raise ConfigError("MIPRO needs a metric(example, prediction, trace=None)")
        self.num_candidates = num_candidates
        self.metric = metric
        self.init_temperature = init_temperature
        self.prompt_model = prompt_model if prompt_model is not None else current_settings().lm
        self.task_model = task_model if task_model is not None else current_settings().lm
        self.verbose = verbose
        self.track_stats = track_stats
        self.teacher_settings: dict[str, Any] = dict(teacher_settings or {})
        self.view_data_batch_size = view_data_batch_size
        self.best = BestSoFar()

    async def _observe_data(self, trainset: Sequence[Example], max_iterations: int = 10) -> str:
        upper_lim = min(len(trainset), self.view_data_batch_size)
        observation = await Predict(DatasetDescriptor, n=1, temperature=1.0).acall(
            examples=repr(list(trainset[0:upper_lim]))
        )
        observations = observation["observations"]
        skips = 0
        iterations = 0
        for b in range(self.view_data_batch_size, len(trainset), self.view_data_batch_size):
            upper_lim = min(len(trainset), b + self.view_data_batch_size)
            output = await Predict(
                DatasetDescriptorWithPriorObservations, n=1, temperature=1.0
            ).acall(prior_observations=observations, examples=repr(list(trainset[b:upper_lim])))
            iterations += 1
            if (
                len(output["observations"]) >= 8
                and output["observations"][:8].upper() == "COMPLETE"
            ):
                skips += 1
                if skips >= 5:
                    break
                continue
            if iterations >= max_iterations:
                break
            observations += output["observations"]
        summary = await Predict(ObservationSummarizer, n=1, temperature=1.0).acall(
            observations=observations
        )
        return str(summary.summary)

    async def _generate_first_N_candidates(  # noqa: PLR0917 - DSPy 2.4's name
        self,
        module: Any,
        N: int,
        view_data: bool,
        view_examples: bool,
        demo_candidates: dict[int, list[list[Any]]],
        devset: Sequence[Example],
    ) -> dict[int, Completions]:
        if view_data:
            with context(lm=self.prompt_model):
                observed = await self._observe_data(devset)
            self.observations = observed.replace("Observations:", "").replace("Summary:", "")
        example_sets: dict[int, dict[int, list[str]]] = {}
        if view_examples:
            for predictor in module.predictors():
                example_set: dict[int, list[str]] = {}
                for set_i, demos in enumerate(demo_candidates[id(predictor)]):
                    if set_i != 0:
                        for example in demos:
                            if example.get("augmented"):
                                example_set.setdefault(set_i, []).append(
                                    _example_string(predictor.signature, example)
                                )
                        example_sets[id(predictor)] = example_set
                    else:
                        example_set[set_i] = []
                        example_sets[id(predictor)] = example_set

        # Every Predict is built (in DSPy's order) before the calls run, concurrently.
        plans: list[tuple[int, Predict, dict[str, Any]]] = []
        for predictor in module.predictors():
            basic_instruction = get_signature(predictor).instructions
            temperature = self.init_temperature
            if view_data and view_examples:
                if 1 not in example_sets[id(predictor)]:
                    raise ValueError("No examples found for the given predictor")
                for i in range(1, self.num_candidates):
                    plans.append(
                        (
                            id(predictor),
                            Predict(
                                BasicGenerateInstructionWithExamplesAndDataObservations,
                                n=1,
                                temperature=temperature,
                            ),
                            {
                                "basic_instruction": basic_instruction,
                                "observations": self.observations,
                                "examples": example_sets[id(predictor)][i],
                            },
                        )
                    )
            elif view_data:
                plans.append(
                    (
                        id(predictor),
                        Predict(
                            BasicGenerateInstructionWithDataObservations,
                            n=N - 1,
                            temperature=temperature,
                        ),
                        {"basic_instruction": basic_instruction, "observations": self.observations},
                    )
                )
            elif view_examples:
                for i in range(1, self.num_candidates):
                    plans.append(
                        (
                            id(predictor),
                            Predict(
                                BasicGenerateInstructionWithExamples, n=1, temperature=temperature
                            ),
                            {
                                "basic_instruction": basic_instruction,
                                "examples": example_sets[id(predictor)][i],
                            },
                        )
                    )
            else:
                plans.append(
                    (
                        id(predictor),
                        Predict(BasicGenerateInstruction, n=N - 1, temperature=temperature),
                        {"basic_instruction": basic_instruction},
                    )
                )

        def job(predict: Predict, inputs: dict[str, Any]) -> Callable[[], Any]:
            async def run() -> Any:
                with context(lm=self.prompt_model):
                    return await predict.acall(**inputs)

            return run

        limit = 1 if scripted_lm(self.prompt_model) else None
        results = await gather_bounded([job(p, inputs) for _, p, inputs in plans], limit)
        candidates: dict[int, Completions] = {}
        for (key, _, _), result in zip(plans, results, strict=True):
            if key not in candidates:
                candidates[key] = result.completions
            else:
                candidates[key].proposed_instruction.extend(result.completions.proposed_instruction)
                candidates[key].proposed_prefix_for_output_field.extend(
                    result.completions.proposed_prefix_for_output_field
                )
        for predictor in module.predictors():
            signature = get_signature(predictor)
            *_, last_field = signature.fields.values()
            candidates[id(predictor)].proposed_instruction.insert(0, signature.instructions)
            candidates[id(predictor)].proposed_prefix_for_output_field.insert(
                0, last_field.json_schema_extra["prefix"]
            )
        return candidates

    def _notices(
        self, student: Any, trainset: Sequence[Example], num_trials: int
    ) -> tuple[str, str]:
        task_calls = len(trainset) * num_trials
        prompt_calls = 10 + self.num_candidates * len(student.predictors())
        user_message = textwrap.dedent(f"""\
            {YELLOW}{BOLD}WARNING: Projected Language Model (LM) Calls{ENDC}

            Please be advised that based on the parameters you have set, the maximum number of LM calls is projected as follows:

            {YELLOW}- Task Model: {BLUE}{BOLD}{len(trainset)}{ENDC}{YELLOW} examples in dev set * {BLUE}{BOLD}{num_trials}{ENDC}{YELLOW} trials * {BLUE}{BOLD}# of LM calls in your program{ENDC}{YELLOW} = ({BLUE}{BOLD}{task_calls} * # of LM calls in your program{ENDC}{YELLOW}) task model calls{ENDC}
            {YELLOW}- Prompt Model: # data summarizer calls (max {BLUE}{BOLD}10{ENDC}{YELLOW}) + {BLUE}{BOLD}{self.num_candidates}{ENDC}{YELLOW} * {BLUE}{BOLD}{len(student.predictors())}{ENDC}{YELLOW} lm calls in program = {BLUE}{BOLD}{prompt_calls}{ENDC}{YELLOW} prompt model calls{ENDC}

            {YELLOW}{BOLD}Estimated Cost Calculation:{ENDC}

            {YELLOW}Total Cost = (Number of calls to task model * (Avg Input Token Length per Call * Task Model Price per Input Token + Avg Output Token Length per Call * Task Model Price per Output Token) 
                        + (Number of calls to prompt model * (Avg Input Token Length per Call * Task Prompt Price per Input Token + Avg Output Token Length per Call * Prompt Model Price per Output Token).{ENDC}

            For a preliminary estimate of potential costs, we recommend you perform your own calculations based on the task
            and prompt models you intend to use. If the projected costs exceed your budget or expectations, you may consider:

            {YELLOW}- Reducing the number of trials (`num_trials`), the size of the trainset, or the number of LM calls in your program.{ENDC}
            {YELLOW}- Using a cheaper task model to optimize the prompt.{ENDC}""")  # noqa: E501, W291
        confirmation = textwrap.dedent(f"""\
            To proceed with the execution of this program, please confirm by typing {BLUE}'y'{ENDC} for yes or {BLUE}'n'{ENDC} for no.

            If you would like to bypass this confirmation step in future executions, set the {YELLOW}`requires_permission_to_run`{ENDC} flag to {YELLOW}`False` when calling compile.{ENDC}

            {YELLOW}Awaiting your input...{ENDC}
        """)  # noqa: E501
        return user_message, confirmation

    def _ask(self, student: Any, trainset: Sequence[Example], num_trials: int, ask: bool) -> bool:
        user_message, confirmation = self._notices(student, trainset, num_trials)
        print(
            f"""{RED}{BOLD}WARNING: MIPRO has been deprecated and replaced with MIPROv2.  MIPRO will be removed in a future release. {ENDC}"""  # noqa: E501
        )
        print(user_message)
        sys.stdout.flush()
        if ask:
            print(confirmation)
            if input("Do you wish to continue? (y/n): ").strip().lower() != "y":
                print("Compilation aborted by the user.")
                return False
        return True

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        trainset: Sequence[Example],
        num_trials: int,
        max_bootstrapped_demos: int,
        max_labeled_demos: int,
        eval_kwargs: Mapping[str, Any],
        seed: int = 42,
        view_data: bool = True,
        view_examples: bool = True,
        requires_permission_to_run: bool = True,
    ) -> Any:
        """The best program of the search (``None`` when the user declines, as DSPy 2.4)."""
        self.best = BestSoFar()
        return compile_interruptible(
            lambda: self.acompile(
                student,
                trainset=trainset,
                num_trials=num_trials,
                max_bootstrapped_demos=max_bootstrapped_demos,
                max_labeled_demos=max_labeled_demos,
                eval_kwargs=eval_kwargs,
                seed=seed,
                view_data=view_data,
                view_examples=view_examples,
                requires_permission_to_run=requires_permission_to_run,
            ),
            self.best,
            "MIPRO",
        )

    async def acompile(
        self,
        student: Any,
        *,
        trainset: Sequence[Example],
        num_trials: int,
        max_bootstrapped_demos: int,
        max_labeled_demos: int,
        eval_kwargs: Mapping[str, Any],
        seed: int = 42,
        view_data: bool = True,
        view_examples: bool = True,
        requires_permission_to_run: bool = True,
    ) -> Any:
        """Async twin of :meth:`compile`."""
        optuna = require_optuna("MIPRO")
        check_module(student)
        trainset = check_trainset(trainset)
        random.seed(seed)
        allowed = await asyncio.to_thread(
            self._ask, student, trainset, num_trials, requires_permission_to_run
        )
        if not allowed:
            return None
        module = student.deepcopy()
        eval_kwargs = dict(eval_kwargs or {})
        if max_bootstrapped_demos == 0 and max_labeled_demos == 0:
            boot_for_gen, labeled_for_gen = 1, 1
        else:
            boot_for_gen, labeled_for_gen = max_bootstrapped_demos, max_labeled_demos

        async def bootstrap(i: int) -> Any:
            shuffled = list(trainset)
            random.Random(i).shuffle(shuffled)
            optimizer = BootstrapFewShot(
                metric=self.metric,
                max_bootstrapped_demos=boot_for_gen,
                max_labeled_demos=labeled_for_gen,
                teacher_settings=self.teacher_settings,
            )
            return await optimizer.acompile(module.deepcopy(), trainset=shuffled)

        def job(i: int) -> Callable[[], Any]:
            return lambda: bootstrap(i)

        limit = 1 if scripted_lm(self.task_model) else None
        compiled = await gather_bounded([job(i) for i in range(1, self.num_candidates)], limit)
        demo_candidates: Any = {id(p): [[]] for p in module.predictors()}
        for program in compiled:
            for module_p, candidate_p in zip(
                module.predictors(), program.predictors(), strict=True
            ):
                demo_candidates[id(module_p)].append(candidate_p.demos)

        instruction_candidates = await self._generate_first_N_candidates(
            module, self.num_candidates, view_data, view_examples, demo_candidates, trainset
        )
        if max_bootstrapped_demos == 0 and max_labeled_demos == 0:
            demo_candidates = None

        best = self.best
        best_score = float("-inf")
        best_program: Any = None
        trial_logs: dict[int, dict[str, Any]] = {}
        progress = Progress("MIPRO", best)
        progress.expect(num_trials)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(
                direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
            )
        try:
            for trial_num in range(num_trials):
                trial = study.ask()
                candidate = module.deepcopy()
                trial_logs[trial_num] = {}
                for p_old, p_new in zip(module.predictors(), candidate.predictors(), strict=True):
                    p_instructions = instruction_candidates[id(p_old)]
                    instruction_idx = trial.suggest_categorical(
                        f"{id(p_old)}_predictor_instruction", range(len(p_instructions))
                    )
                    if demo_candidates:
                        p_demos = demo_candidates[id(p_old)]
                        demos_idx = trial.suggest_categorical(
                            f"{id(p_old)}_predictor_demos", range(len(p_demos))
                        )
                    trial_logs[trial_num][f"{id(p_old)}_predictor_instruction"] = instruction_idx
                    if demo_candidates:
                        trial_logs[trial_num][f"{id(p_old)}_predictor_demos"] = demos_idx
                    selected = p_instructions[instruction_idx]
                    instruction = selected.proposed_instruction.strip('"').strip()
                    prefix = selected.proposed_prefix_for_output_field.strip('"').strip()
                    signature = get_signature(p_new)
                    *_, last_key = signature.fields.keys()
                    set_signature(
                        p_new,
                        signature.with_instructions(instruction).with_updated_fields(
                            last_key, prefix=prefix
                        ),
                    )
                    if demo_candidates:
                        p_new.demos = p_demos[demos_idx]
                trial_logs[trial_num]["program"] = candidate

                total_score = 0.0
                batch_size = 100
                pruned = False
                score = 0.0
                for i in range(math.ceil(len(trainset) / batch_size)):
                    split = trainset[i * batch_size : min((i + 1) * batch_size, len(trainset))]
                    split_score = await score_program(candidate, split, self.metric, eval_kwargs)
                    total_score += split_score * len(split)
                    score = total_score / min((i + 1) * 100, len(trainset))
                    trial.report(score, i)
                    if trial.should_prune():
                        logger.info("Trial pruned.")
                        trial_logs[trial_num]["score"] = score
                        trial_logs[trial_num]["pruned"] = True
                        pruned = True
                        break
                progress.done()
                if pruned:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    continue
                trial_logs[trial_num]["score"] = score
                trial_logs[trial_num]["pruned"] = False
                if score > best_score:
                    best_score = score
                    best_program = candidate.deepcopy()
                    best.offer(score, best_program)
                study.tell(trial, score)
        finally:
            progress.close()

        if best_program is not None and self.track_stats:
            best_program.trial_logs = trial_logs
        return best_program


class BayesianSignatureOptimizer(MIPRO):
    """DSPy 2.4's deprecated name for :class:`MIPRO` (``n`` candidates, ``compile(devset=...)``).

    Example:
        >>> from tgispy.evaluate import answer_exact_match
        >>> BayesianSignatureOptimizer(answer_exact_match, n=4).num_candidates  # doctest: +SKIP
        4
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        prompt_model: Any = None,
        task_model: Any = None,
        teacher_settings: Mapping[str, Any] | None = None,
        n: int = 10,
        metric: Callable[..., Any] | None = None,
        init_temperature: float = 1.0,
        verbose: bool = False,
        track_stats: bool = True,
        view_data_batch_size: int = 10,
    ) -> None:
        print(
            "\u001b[31m[WARNING] BayesianSignatureOptimizer has been deprecated and replaced "
            "with MIPRO.  BayesianSignatureOptimizer will be removed in a future release. "
            "\u001b[31m"
        )
        super().__init__(
            metric=metric,  # type: ignore[arg-type]
            prompt_model=prompt_model,
            task_model=task_model,
            teacher_settings=teacher_settings,
            num_candidates=n,
            init_temperature=init_temperature,
            verbose=verbose,
            track_stats=track_stats,
            view_data_batch_size=view_data_batch_size,
        )

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        devset: Sequence[Example],
        max_bootstrapped_demos: int,
        max_labeled_demos: int,
        eval_kwargs: Mapping[str, Any],
        seed: int = 42,
        optuna_trials_num: int,
        view_data: bool = True,
        view_examples: bool = True,
        requires_permission_to_run: bool = False,
        num_trials: int | None = None,
    ) -> Any:
        """MIPRO's ``compile`` with ``trainset=devset`` and ``num_trials=optuna_trials_num``."""
        return super().compile(
            student,
            trainset=devset,
            max_bootstrapped_demos=max_bootstrapped_demos,
            max_labeled_demos=max_labeled_demos,
            eval_kwargs=eval_kwargs,
            seed=seed,
            view_data=view_data,
            view_examples=view_examples,
            requires_permission_to_run=requires_permission_to_run,
            num_trials=optuna_trials_num,
        )
