"""``AvatarOptimizer``: feedback-driven instructions for tool-using ``Avatar`` programs (2.4.17).

Each iteration scores the actor on the training set, splits the examples into positive
(``score >= upper_bound``) and negative (``score <= lower_bound``) ones, asks a ``Comparator``
for feedback on the actions taken, and turns the feedback into a new instruction. The program
must look like DSPy 2.4's ``Avatar``: an ``actor`` predictor and a list of ``tools``; its
predictions carry ``actions`` (:class:`ActionOutput`). Examples are scored concurrently.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from tgispy.errors import ConfigError
from tgispy.evaluate._runner import async_entry, run_interruptible
from tgispy.primitives import Example
from tgispy.signatures import InputField, OutputField, Signature
from tgispy.teleprompt._teleprompter import Teleprompter, check_trainset

__all__ = [
    "ActionOutput",
    "AvatarOptimizer",
    "Comparator",
    "EvalResult",
    "FeedbackBasedInstruction",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_EXAMPLES = 10


class ActionOutput(BaseModel):
    """One action an ``Avatar`` took: the tool, its input and its output."""

    tool_name: str
    tool_input_query: str
    tool_output: str


class EvalResult(BaseModel):
    """An example's inputs, its score and the actions taken on it."""

    example: dict[str, Any]
    score: float
    actions: list[ActionOutput] | None = None


class Comparator(Signature):
    """After executing the given actions on user inputs using the given instruction, some inputs have yielded good, results, while others have not. I'll provide you the inputs along with their, corresponding evaluation metrics:

    Task:
    (1) Firstly, identify and contrast the patterns of inputs that have achieved good results with those that have not.
    (2) Then, review the computational logic for any inconsistencies in the previous actions.
    (3) Lastly, specify the modification in tools used that can lead to improved performance on the negative inputs."""  # noqa: E501 - DSPy 2.4.17's prompt, verbatim

    instruction: str = InputField(
        prefix="Instruction: ",
        desc="Instruction for the actor to execute the task",
    )
    actions: list[str] = InputField(
        prefix="Actions: ",
        desc="Actions actor can take to complete the task",
    )
    pos_input_with_metrics: list[EvalResult] = InputField(
        prefix="Positive Inputs: ",
        desc="Positive inputs along with their score on a evaluation metric and actions taken",
    )
    neg_input_with_metrics: list[EvalResult] = InputField(
        prefix="Negative Inputs: ",
        desc="Negative inputs along with their score on a evaluation metric and actions taken",
    )
    feedback: str = OutputField(
        prefix="Feedback: ",
        desc="Feedback for the actor to improve the performance of negative inputs",
    )


class FeedbackBasedInstruction(Signature):
    """There is a task that needs to be completed for which one can use multiple tools to achieve the desired outcome. A group's performance was evaluated on a dataset of inputs, the inputs that did well are positive inputs, and the inputs that did not do well are negative inputs.

    You received feedback on how they can better use the tools to improve your performance on the negative inputs. You have been provided with the previous instruction, that they followed to use tools to complete the task, and the feedback on your performance.

    Your task is to incorporate the feedback and generate a detailed instruction for the group to follow to improve their performance on the task.

    Make sure that the new instruction talks about how to use the tools effectively and should be no more than 3 paragraphs long. The previous instruction contains general guidelines that you must retain in the new instruction."""  # noqa: E501 - DSPy 2.4.17's prompt, verbatim

    previous_instruction: str = InputField(
        prefix="Previous Instruction: ",
        desc="Previous instruction for the actor to execute the task",
    )
    feedback: str = InputField(
        prefix="Feedback: ",
        desc="Feedback for the actor to improve the performance of negative inputs",
    )
    new_instruction: str = OutputField(
        prefix="New Instruction: ",
        desc="New instruction for the actor to execute the task",
    )


class AvatarOptimizer(Teleprompter):
    """Improve an ``Avatar``'s instruction from feedback on good and bad examples (DSPy 2.4.17).

    Args:
        metric: ``metric(example, prediction)``.
        max_iters: feedback rounds.
        lower_bound: scores at or below it are negative examples.
        upper_bound: scores at or above it are positive examples.
        max_positive_inputs: positive examples shown (sampled), default 10.
        max_negative_inputs: negative examples shown (sampled), default 10.
        optimize_for: ``"max"`` or ``"min"``.
        num_threads: examples scored at once.

    Example:
        >>> AvatarOptimizer(metric=lambda example, pred: 1.0, max_iters=2).max_iters
        2
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's positional signature
        self,
        metric: Callable[..., Any],
        max_iters: int = 10,
        lower_bound: int = 0,
        upper_bound: int = 1,
        max_positive_inputs: int | None = None,
        max_negative_inputs: int | None = None,
        optimize_for: str = "max",
        *,
        num_threads: int = 60,
    ) -> None:
        if metric is None:
            raise ConfigError("`metric` argument cannot be None. Please provide a metric function.")
        from tgispy.functional import TypedPredictor
        from tgispy.predict import Predict

        self.metric = metric
        self.optimize_for = optimize_for
        self.max_iters = max_iters
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound
        self.max_positive_inputs = max_positive_inputs or DEFAULT_MAX_EXAMPLES
        self.max_negative_inputs = max_negative_inputs or DEFAULT_MAX_EXAMPLES
        self.num_threads = num_threads
        self.comparator = TypedPredictor(Comparator)
        self.feedback_instruction = Predict(FeedbackBasedInstruction)

    async def _process_example(self, actor: Any, example: Example) -> tuple[Example, Any, float]:
        actor = copy.deepcopy(actor)
        try:
            inputs = example.inputs().toDict()
            entry = async_entry(actor)
            if entry is not None:
                prediction = await entry(**inputs)
            else:
                prediction = await asyncio.to_thread(actor, **inputs)
            return example, prediction, self.metric(example, prediction)
        except Exception as exc:
            logger.warning("%s", exc)
            return example, None, 0

    async def thread_safe_evaluator(
        self, devset: Sequence[Example], actor: Any
    ) -> tuple[float, list[tuple[Example, Any, float]]]:
        """The average score over ``devset`` and ``(example, prediction, score)`` per example."""
        semaphore = asyncio.Semaphore(self.num_threads)

        async def one(example: Example) -> tuple[Example, Any, float]:
            async with semaphore:
                return await self._process_example(actor, example)

        results = list(await asyncio.gather(*(one(example) for example in devset)))
        return sum(score for *_, score in results) / len(devset), results

    async def _get_pos_neg_results(
        self, actor: Any, trainset: Sequence[Example]
    ) -> tuple[float, list[EvalResult], list[EvalResult]]:
        pos_inputs, neg_inputs = [], []
        avg_score, results = await self.thread_safe_evaluator(trainset, actor)
        logger.info("Average Score: %s", avg_score)
        for example, prediction, score in results:
            result = EvalResult(
                example=example.inputs().toDict(),
                score=score,
                actions=prediction.actions if prediction else None,
            )
            if score >= self.upper_bound:
                pos_inputs.append(result)
            elif score <= self.lower_bound:
                neg_inputs.append(result)
        if not pos_inputs:
            raise ValueError(
                "No positive examples found, try lowering the upper_bound or providing more "
                "training data"
            )
        if not neg_inputs:
            raise ValueError(
                "No negative examples found, try raising the lower_bound or providing more "
                "training data"
            )
        return avg_score, pos_inputs, neg_inputs

    def compile(self, student: Any, *, trainset: Sequence[Example]) -> Any:  # type: ignore[override]
        """The best actor found (a deep copy of ``student``)."""
        return run_interruptible(lambda: self.acompile(student, trainset=trainset))

    async def acompile(self, student: Any, *, trainset: Sequence[Example]) -> Any:
        """Async twin of :meth:`compile`."""
        trainset = check_trainset(trainset)
        best_actor = copy.deepcopy(student)
        best_score = -999.0 if self.optimize_for == "max" else 999.0
        for i in range(self.max_iters):
            logger.info("Iteration %d/%d", i + 1, self.max_iters)
            score, pos_inputs, neg_inputs = await self._get_pos_neg_results(best_actor, trainset)
            if self.max_positive_inputs and len(pos_inputs) > self.max_positive_inputs:
                pos_inputs = random.sample(pos_inputs, self.max_positive_inputs)
            if self.max_negative_inputs and len(neg_inputs) > self.max_negative_inputs:
                neg_inputs = random.sample(neg_inputs, self.max_negative_inputs)
            feedback = (
                await self.comparator.acall(
                    instruction=best_actor.actor.signature.instructions,
                    actions=[str(tool) for tool in best_actor.tools],
                    pos_input_with_metrics=pos_inputs,
                    neg_input_with_metrics=neg_inputs,
                )
            ).feedback
            new_instruction = (
                await self.feedback_instruction.acall(
                    previous_instruction=best_actor.actor.signature.instructions,
                    feedback=feedback,
                )
            ).new_instruction
            logger.info("Generated new instruction: %s", new_instruction)
            if (self.optimize_for == "max" and best_score < score) or (
                self.optimize_for == "min" and best_score > score
            ):
                best_actor.actor.signature = best_actor.actor.signature.with_instructions(
                    new_instruction
                )
                best_actor.actor_clone = copy.deepcopy(best_actor.actor)
                best_score = score
        return best_actor
