"""``COPRO``: coordinate-ascent search over each predictor's instruction and output prefix.

DSPy 2.4.17's algorithm and prompts. The prompt model proposes ``breadth`` instructions (and
last-field prefixes) per predictor; each is scored with :class:`~tgispy.Evaluate` on the
training set; the best ones are shown back to the prompt model, ``depth`` times. Here the
candidates of one batch are scored concurrently on the async core (DSPy scored them one after
the other); the bookkeeping still runs in candidate order, so the result is the same.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tgispy._settings import context
from tgispy.adapters import passages2text
from tgispy.errors import ConfigError
from tgispy.predict._predict import Predict
from tgispy.primitives import Example
from tgispy.signatures import InputField, OutputField, Signature
from tgispy.teleprompt._search import (
    BestSoFar,
    Progress,
    compile_interruptible,
    gather_bounded,
    score_program,
    scripted_lm,
)
from tgispy.teleprompt._teleprompter import Teleprompter, check_module, check_trainset

__all__ = [
    "COPRO",
    "BasicGenerateInstruction",
    "GenerateInstructionGivenAttempts",
    "SignatureOptimizer",
    "get_signature",
    "set_signature",
]

logger = logging.getLogger(__name__)


class BasicGenerateInstruction(Signature):
    """You are an instruction optimizer for large language models. I will give you a ``signature`` of fields (inputs and outputs) in English. Your task is to propose an instruction that will lead a good language model to perform the task well. Don't be afraid to be creative."""  # noqa: E501 - DSPy 2.4.17's prompt, verbatim

    basic_instruction = InputField(desc="The initial instructions before optimization")
    proposed_instruction = OutputField(desc="The improved instructions for the language model")
    proposed_prefix_for_output_field = OutputField(
        desc="The string at the end of the prompt, which will help the model start solving the task",  # noqa: E501
    )


class GenerateInstructionGivenAttempts(Signature):
    """You are an instruction optimizer for large language models. I will give some task instructions I've tried, along with their corresponding validation scores. The instructions are arranged in increasing order based on their scores, where higher scores indicate better quality.

    Your task is to propose a new instruction that will lead a good language model to perform the task even better. Don't be afraid to be creative."""  # noqa: E501 - DSPy 2.4.17's prompt, verbatim

    attempted_instructions = InputField(format=passages2text)
    proposed_instruction = OutputField(desc="The improved instructions for the language model")
    proposed_prefix_for_output_field = OutputField(
        desc="The string at the end of the prompt, which will help the model start solving the task",  # noqa: E501
    )


def get_signature(predictor: Any) -> Any:
    """The signature an optimizer edits: a ChainOfThought's extended one, else ``signature``."""
    extended = predictor.__dict__.get("extended_signature")
    return extended if extended is not None else predictor.signature


def set_signature(predictor: Any, signature: Any) -> None:
    """Replace the signature :func:`get_signature` returns."""
    if predictor.__dict__.get("extended_signature") is not None:
        predictor.extended_signature = signature
    else:
        predictor.signature = signature


def _with_candidate(signature: Any, instruction: str, prefix: str) -> Any:
    *_, last_key = signature.fields.keys()
    return signature.with_instructions(instruction).with_updated_fields(last_key, prefix=prefix)


def _last_prefix(signature: Any) -> str:
    *_, last_key = signature.fields.keys()
    return str(signature.fields[last_key].json_schema_extra["prefix"])


class COPRO(Teleprompter):
    """Optimize each predictor's instruction and output prefix (DSPy 2.4.17's ``COPRO``).

    Args:
        prompt_model: the LM that proposes instructions (default: the configured LM).
        metric: ``metric(example, prediction, trace=None)``.
        breadth: instructions proposed per predictor and round (> 1).
        depth: rounds of proposal.
        init_temperature: the proposals' sampling temperature.
        track_stats: attach ``results_best`` / ``results_latest`` statistics to the result.
        candidate_concurrency: candidate programs scored at once (each with ``num_threads`` of
            ``eval_kwargs`` examples in flight). ``None``: a whole batch at once, or one at a time
            when the task LM answers from an ordered script.

    ``compile`` returns the best program, with ``candidate_programs`` (dicts with ``score``,
    ``program``, ``instruction``, ``prefix``, ``depth``, best first) and ``total_calls`` (the
    number of evaluations). Ctrl-C during ``compile`` returns the best program so far.

    Example:
        >>> from tgispy.evaluate import answer_exact_match
        >>> optimizer = COPRO(metric=answer_exact_match, breadth=2, depth=1)
        >>> optimizer.breadth, optimizer.init_temperature
        (2, 1.4)
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        prompt_model: Any = None,
        metric: Callable[..., Any] | None = None,
        breadth: int = 10,
        depth: int = 3,
        init_temperature: float = 1.4,
        track_stats: bool = False,
        *,
        candidate_concurrency: int | None = None,
        **_kwargs: Any,
    ) -> None:
        if breadth <= 1:
            raise ValueError("Breadth must be greater than 1")
        if candidate_concurrency is not None and candidate_concurrency < 1:
            raise ConfigError(
                f"candidate_concurrency must be >= 1 or None, got {candidate_concurrency!r}"
            )
        self.metric = metric
        self.breadth = breadth
        self.depth = depth
        self.init_temperature = init_temperature
        self.prompt_model = prompt_model
        self.track_stats = track_stats
        self.candidate_concurrency = candidate_concurrency
        self.best = BestSoFar()
        if "verbose" in _kwargs:
            logger.warning(
                "DeprecationWarning: 'verbose' has been deprecated. To see all information for "
                "debugging, set the 'tgispy' logger to DEBUG."
            )

    # ---- helpers (DSPy 2.4's names) ----------------------------------------------------------
    def _get_signature(self, predictor: Any) -> Any:
        return get_signature(predictor)

    def _set_signature(self, predictor: Any, updated_signature: Any) -> None:
        set_signature(predictor, updated_signature)

    def _check_candidates_equal(
        self, candidate1: Mapping[str, Any], candidate2: Mapping[str, Any]
    ) -> bool:
        for p1, p2 in zip(
            candidate1["program"].predictors(), candidate2["program"].predictors(), strict=False
        ):
            s1, s2 = get_signature(p1), get_signature(p2)
            if s1.instructions != s2.instructions:
                return False
            *_, f1 = s1.fields.values()
            *_, f2 = s2.fields.values()
            if f1 != f2:
                return False
        return True

    def _drop_duplicates(self, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        final: list[dict[str, Any]] = []
        last_batch: list[dict[str, Any]] = []
        last_batch_score: float = -1
        for c in candidates:
            repeat = False
            if c["score"] == last_batch_score:
                for c2 in last_batch:
                    if self._check_candidates_equal(c, c2):
                        repeat = True
                        break
                if not repeat:
                    last_batch.append(c)
            else:
                last_batch = [c]
                last_batch_score = c["score"]
            if not repeat:
                final.append(c)
        return final

    async def _propose(self, signature: Any, n: int, **inputs: Any) -> Any:
        predict = Predict(signature, n=n, temperature=self.init_temperature)
        if self.prompt_model is not None:
            with context(lm=self.prompt_model):
                return await predict.acall(**inputs)
        return await predict.acall(**inputs)

    # ---- faces -------------------------------------------------------------------------------
    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        trainset: Sequence[Example],
        eval_kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        """The best program found; ``student`` is not changed (it is deep-copied)."""
        self.best = BestSoFar()
        return compile_interruptible(
            lambda: self.acompile(student, trainset=trainset, eval_kwargs=eval_kwargs),
            self.best,
            "COPRO",
        )

    async def acompile(
        self,
        student: Any,
        *,
        trainset: Sequence[Example],
        eval_kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        """Async twin of :meth:`compile`; :attr:`best` holds the best program while it runs."""
        check_module(student)
        trainset = check_trainset(trainset)
        if self.metric is None:
            raise ConfigError("COPRO needs a metric(example, prediction, trace=None)")
        eval_kwargs = dict(eval_kwargs or {})
        module = student.deepcopy()
        predictors = module.predictors()
        stats_keys = ("depth", "max", "average", "min", "std")
        results_best: dict[int, dict[str, list[Any]]] = {
            id(p): {k: [] for k in stats_keys} for p in predictors
        }
        results_latest: dict[int, dict[str, list[Any]]] = {
            id(p): {k: [] for k in stats_keys} for p in predictors
        }
        limit = 1 if scripted_lm() else self.candidate_concurrency
        total_calls = 0
        candidates: dict[int, Any] = {}
        evaluated: dict[int, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)

        # Zero-shot seeding: breadth - 1 proposals per predictor, plus the current instruction.
        for predictor in predictors:
            signature = get_signature(predictor)
            basic_instruction = signature.instructions
            basic_prefix = _last_prefix(signature)
            instruct = await self._propose(
                BasicGenerateInstruction, self.breadth - 1, basic_instruction=basic_instruction
            )
            instruct.completions.proposed_instruction.append(basic_instruction)
            instruct.completions.proposed_prefix_for_output_field.append(basic_prefix)
            candidates[id(predictor)] = instruct.completions
            evaluated[id(predictor)] = {}

        latest_candidates = candidates
        all_candidates = candidates
        module_clone = module.deepcopy()
        progress = Progress("COPRO", self.best)
        d = 0
        try:
            for d in range(self.depth):
                logger.info("Iteration Depth: %d/%d.", d + 1, self.depth)
                latest_scores: list[float] = []
                for p_i, (p_old, p_new) in enumerate(
                    zip(predictors, module_clone.predictors(), strict=True)
                ):
                    # With several predictors every candidate is re-scored: the others changed.
                    batch = (
                        all_candidates[id(p_old)]
                        if len(predictors) > 1
                        else latest_candidates[id(p_old)]
                    )
                    pairs = [
                        (
                            c.proposed_instruction.strip('"').strip(),
                            c.proposed_prefix_for_output_field.strip('"').strip(),
                        )
                        for c in batch
                    ]
                    programs = []
                    for instruction, prefix in pairs:
                        set_signature(
                            p_new, _with_candidate(get_signature(p_new), instruction, prefix)
                        )
                        programs.append(module_clone.deepcopy())
                    progress.expect(len(programs))

                    def job(program: Any) -> Callable[[], Any]:
                        async def run() -> float:
                            score = await score_program(program, trainset, self.metric, eval_kwargs)  # type: ignore[arg-type]
                            self.best.offer(score, program)
                            progress.done()
                            return score

                        return run

                    logger.info(
                        "At Depth %d/%d, Evaluating %d Prompt Candidates for Predictor %d of %d.",
                        d + 1,
                        self.depth,
                        len(programs),
                        p_i + 1,
                        len(predictors),
                    )
                    scores = await gather_bounded([job(p) for p in programs], limit)
                    for c_i, ((instruction, prefix), program, score) in enumerate(
                        zip(pairs, programs, scores, strict=True)
                    ):
                        total_calls += 1
                        seen = evaluated[id(p_old)].get((instruction, prefix))
                        if seen is None or seen["score"] < score:
                            evaluated[id(p_old)][(instruction, prefix)] = {
                                "score": score,
                                "program": program,
                                "instruction": instruction,
                                "prefix": prefix,
                                "depth": d,
                            }
                        if len(batch) - self.breadth <= c_i:
                            latest_scores.append(score)

                    if self.track_stats:
                        _append_stats(results_latest[id(p_old)], d, latest_scores)

                    # Keep this predictor at its best so the next predictor is scored against it.
                    best = max(evaluated[id(p_old)].values(), key=lambda c: c["score"])
                    set_signature(
                        p_new,
                        _with_candidate(get_signature(p_new), best["instruction"], best["prefix"]),
                    )
                    logger.debug(
                        "Updating Predictor %d to:\ni: %s\np: %s",
                        id(p_old),
                        best["instruction"],
                        best["prefix"],
                    )

                if d == self.depth - 1:
                    break

                new_candidates = {}
                for p_base in predictors:
                    ranked = sorted(
                        evaluated[id(p_base)].values(), key=lambda x: x["score"], reverse=True
                    )
                    if self.track_stats:
                        _append_stats(
                            results_best[id(p_base)], d, [x["score"] for x in ranked][:10]
                        )
                    shortest_len = min(len(ranked), self.breadth)
                    attempts = []
                    for i in range(shortest_len - 1, -1, -1):
                        attempts.append(
                            f"Instruction #{shortest_len - i}: {ranked[i]['instruction']}"
                        )
                        attempts.append(f"Prefix #{shortest_len - i}: {ranked[i]['prefix']}")
                        attempts.append(
                            f"Resulting Score #{shortest_len - i}: {ranked[i]['score']}"
                        )
                    instr = await self._propose(
                        GenerateInstructionGivenAttempts,
                        self.breadth,
                        attempted_instructions=attempts,
                    )
                    new_candidates[id(p_base)] = instr.completions
                    all_candidates[id(p_base)].proposed_instruction.extend(
                        instr.completions.proposed_instruction
                    )
                    all_candidates[id(p_base)].proposed_prefix_for_output_field.extend(
                        instr.completions.proposed_prefix_for_output_field
                    )
                latest_candidates = new_candidates
        finally:
            progress.close()

        final: list[dict[str, Any]] = []
        for predictor in predictors:
            final.extend(evaluated[id(predictor)].values())
            if self.track_stats:
                ranked = sorted(
                    evaluated[id(predictor)].values(), key=lambda x: x["score"], reverse=True
                )
                _append_stats(results_best[id(predictor)], d, [x["score"] for x in ranked][:10])
        final.sort(key=lambda x: x["score"], reverse=True)
        final = self._drop_duplicates(final)
        best_program = final[0]["program"]
        best_program.candidate_programs = final
        best_program.total_calls = total_calls
        if self.track_stats:
            best_program.results_best = results_best
            best_program.results_latest = results_latest
        return best_program


def _append_stats(stats: dict[str, list[Any]], depth: int, scores: list[float]) -> None:
    stats["depth"].append(depth)
    stats["max"].append(max(scores))
    stats["average"].append(sum(scores) / len(scores))
    stats["min"].append(min(scores))
    stats["std"].append(statistics.pstdev(scores))  # numpy.std: the population deviation


class SignatureOptimizer(COPRO):
    """Deprecated name of :class:`COPRO` whose ``compile`` takes ``devset`` (DSPy 2.4).

    (DSPy 2.4.17's own ``SignatureOptimizer(...)`` raised a ``TypeError``: it passed one
    positional argument too many to ``COPRO``. This one works.)

    Example:
        >>> SignatureOptimizer(breadth=2).breadth  # doctest: +SKIP
        2
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        prompt_model: Any = None,
        metric: Callable[..., Any] | None = None,
        breadth: int = 10,
        depth: int = 3,
        init_temperature: float = 1.4,
        verbose: bool = False,
        track_stats: bool = False,
    ) -> None:
        logger.warning(
            "[WARNING] SignatureOptimizer has been deprecated and replaced with COPRO. "
            "SignatureOptimizer will be removed in a future release."
        )
        super().__init__(prompt_model, metric, breadth, depth, init_temperature, track_stats)

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        devset: Sequence[Example],
        eval_kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        """COPRO's ``compile`` with ``trainset=devset``."""
        return super().compile(student, trainset=devset, eval_kwargs=eval_kwargs)
