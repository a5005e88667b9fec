"""Grounded instruction proposal (DSPy 2.4.17's ``dspy.propose``), as ``MIPROv2`` uses it.

The prompt model summarizes the training data, describes the program and each module, and
proposes instructions grounded in bootstrapped demos and a random "tip". Signatures, prompts and
the order of random draws are DSPy 2.4.17's, so the same LM answers and seed give the same
proposals. Proposals for different predictors and demo sets run concurrently (after every random
draw has been made in DSPy's order) unless the prompt model answers from an ordered script.
"""

from __future__ import annotations

import inspect
import logging
import random
import re
from collections.abc import Sequence
from typing import Any

from tgispy._settings import context
from tgispy._settings import current as current_settings
from tgispy.predict._chain_of_thought import ChainOfThought
from tgispy.predict._predict import Predict
from tgispy.primitives import Example, Module, Prediction
from tgispy.signatures import InputField, OutputField, Signature, make_signature
from tgispy.teleprompt._copro import get_signature
from tgispy.teleprompt._search import gather_bounded, scripted_lm

__all__ = ["TIPS", "GroundedProposer", "create_dataset_summary", "strip_prefix"]

logger = logging.getLogger(__name__)

MAX_INSTRUCT_IN_HISTORY = 5

TIPS = {
    "none": "",
    "creative": "Don't be afraid to be creative when creating the new instruction!",
    "simple": "Keep the instruction clear and concise.",
    "description": "Make sure your instruction is very informative and descriptive.",
    "high_stakes": "The instruction should include a high stakes scenario in which the LM must solve the task!",  # noqa: E501
    "persona": 'Include a persona that is relevant to the task in the instruction (ie. "You are a ...")',  # noqa: E501
}

# ---- dataset summary ------------------------------------------------------------------------


class ObservationSummarizer(Signature):
    """Given a series of observations I have made about my dataset, please summarize them into a brief 2-3 sentence summary which highlights only the most important details."""  # noqa: E501

    observations = InputField(desc="Observations I have made about my dataset")
    summary = OutputField(
        desc="Two to Three sentence summary of only the most significant highlights of my observations"  # noqa: E501
    )


class DatasetDescriptor(Signature):
    """Given several examples from a dataset please write observations about trends that hold for most or all of the samples. Some areas you may consider in your observations: topics, content, syntax, conciceness, etc. It will be useful to make an educated guess as to the nature of the task this dataset will enable. Don't be afraid to be creative"""  # noqa: E501

    examples = InputField(desc="Sample data points from the dataset")
    observations = OutputField(
        desc="Somethings that holds true for most or all of the data you observed"
    )


class DatasetDescriptorWithPriorObservations(Signature):
    """Given several examples from a dataset please write observations about trends that hold for most or all of the samples. I will also provide you with a few observations I have already made.  Please add your own observations or if you feel the observations are comprehensive say 'COMPLETE' Some areas you may consider in your observations: topics, content, syntax, conciceness, etc. It will be useful to make an educated guess as to the nature of the task this dataset will enable. Don't be afraid to be creative"""  # noqa: E501

    examples = InputField(desc="Sample data points from the dataset")
    prior_observations = InputField(desc="Some prior observations I made about the data")
    observations = OutputField(
        desc="Somethings that holds true for most or all of the data you observed or COMPLETE if you have nothing to add"  # noqa: E501
    )


def strip_prefix(text: str) -> str:
    """Drop a leading ``Label:`` (up to five words) and surrounding quotes, as DSPy 2.4 did.

    Example:
        >>> strip_prefix('Proposed Instruction: "Be brief."')
        'Be brief.'
    """
    modified = re.sub(r"^[\*\s]*(([\w\'\-]+\s+){0,4}[\w\'\-]+):\s*", "", text)
    return modified.strip('"')


def order_input_keys_in_string(unordered_repr: str) -> str:
    """Sort the keys inside every ``input_keys={...}`` of a repr (sets print in any order)."""

    def reorder(match: re.Match[str]) -> str:
        keys = sorted(key.strip() for key in match.group(1).split(","))
        return f"input_keys={{{', '.join(keys)}}}"

    return re.sub(r"input_keys=\{([^\}]+)\}", reorder, unordered_repr)


async def _call(predict: Predict, lm: Any, **inputs: Any) -> Prediction:
    if lm is not None:
        with context(lm=lm):
            return await predict.acall(**inputs)  # type: ignore[no-any-return]
    return await predict.acall(**inputs)  # type: ignore[no-any-return]


async def create_dataset_summary(
    trainset: Sequence[Example], view_data_batch_size: int, prompt_model: Any
) -> str:
    """A 2-3 sentence summary of the training data, from batches of ``view_data_batch_size``."""
    upper_lim = min(len(trainset), view_data_batch_size)
    prompt_model = prompt_model if prompt_model else current_settings().lm
    observation = await _call(
        Predict(DatasetDescriptor, n=1, temperature=1.0),
        prompt_model,
        examples=order_input_keys_in_string(repr(list(trainset[0:upper_lim]))),
    )
    observations = observation["observations"]
    skips = 0
    try:
        calls = 0
        for b in range(view_data_batch_size, len(trainset), view_data_batch_size):
            calls += 1
            if calls >= 10:
                break
            upper_lim = min(len(trainset), b + view_data_batch_size)
            output = await _call(
                Predict(DatasetDescriptorWithPriorObservations, n=1, temperature=1.0),
                prompt_model,
                prior_observations=observations,
                examples=order_input_keys_in_string(repr(list(trainset[b:upper_lim]))),
            )
            if (
                len(output["observations"]) >= 8
                and output["observations"][:8].upper() == "COMPLETE"
            ):
                skips += 1
                if skips >= 5:
                    break
                continue
            observations += output["observations"]
    except Exception as exc:
        logger.info("dataset summary: %s; using the observations so far", exc)
    summary = await _call(
        Predict(ObservationSummarizer, n=1, temperature=1.0),
        prompt_model,
        observations=observations,
    )
    return strip_prefix(summary.summary)


# ---- program description --------------------------------------------------------------------


class DescribeProgram(Signature):
    """Below is some pseudo-code for a pipeline that solves tasks with calls to language models. Please describe what type of task this program appears to be designed to solve, and how it appears to work."""  # noqa: E501

    program_code = InputField(
        format=str,
        desc="Pseudocode for a language model program designed to solve a particular task.",
        prefix="PROGRAM CODE:",
    )
    program_example = InputField(
        format=str, desc="An example of the program in use.", prefix="EXAMPLE OF PROGRAM IN USE:"
    )
    program_description = OutputField(
        desc="Describe what task the program is designed to solve, and how it goes about solving this task.",  # noqa: E501
        prefix="SUMMARY OF PROGRAM ABOVE:",
    )


class DescribeModule(Signature):
    """Below is some pseudo-code for a pipeline that solves tasks with calls to language models. Please describe the purpose of one of the specified module in this pipeline."""  # noqa: E501

    program_code = InputField(
        format=str,
        desc="Pseudocode for a language model program designed to solve a particular task.",
        prefix="PROGRAM CODE:",
    )
    program_example = InputField(
        format=str, desc="An example of the program in use.", prefix="EXAMPLE OF PROGRAM IN USE:"
    )
    program_description = InputField(
        desc="Summary of the task the program is designed to solve, and how it goes about solving it.",  # noqa: E501
        prefix="SUMMARY OF PROGRAM ABOVE:",
    )
    module = InputField(
        desc="The module in the program that we want to describe.", prefix="MODULE:"
    )
    module_description = OutputField(
        desc="Description of the module's role in the broader program.",
        prefix="MODULE DESCRIPTION:",
    )


def generate_instruction_class(
    use_dataset_summary: bool = True,
    program_aware: bool = True,
    use_task_demos: bool = True,
    use_instruct_history: bool = True,
    use_tip: bool = True,
) -> Predict:
    """A ``Predict`` over the instruction-proposal signature with the chosen input fields."""
    fields: list[tuple[str, Any]] = []
    if use_dataset_summary:
        fields.append(
            (
                "dataset_description",
                InputField(
                    desc="A description of the dataset that we are using.",
                    prefix="DATASET SUMMARY:",
                ),
            )
        )
    if program_aware:
        fields += [
            (
                "program_code",
                InputField(
                    format=str,
                    desc="Language model program designed to solve a particular task.",
                    prefix="PROGRAM CODE:",
                ),
            ),
            (
                "program_description",
                InputField(
                    desc="Summary of the task the program is designed to solve, and how it goes about solving it.",  # noqa: E501
                    prefix="PROGRAM DESCRIPTION:",
                ),
            ),
            (
                "module",
                InputField(desc="The module to create an instruction for.", prefix="MODULE:"),
            ),
        ]
    fields.append(
        (
            "task_demos",
            InputField(
                format=str, desc="Example inputs/outputs of our module.", prefix="TASK DEMO(S):"
            ),
        )
    )
    if use_instruct_history:
        fields.append(
            (
                "previous_instructions",
                InputField(
                    format=str,
                    desc="Previous instructions we've attempted, along with their associated scores.",  # noqa: E501
                    prefix="PREVIOUS INSTRUCTIONS:",
                ),
            )
        )
    fields.append(
        (
            "basic_instruction",
            InputField(format=str, desc="Basic instruction.", prefix="BASIC INSTRUCTION:"),
        )
    )
    if use_tip:
        fields.append(
            (
                "tip",
                InputField(
                    format=str,
                    desc="A suggestion for how to go about generating the new instruction.",
                    prefix="TIP:",
                ),
            )
        )
    fields.append(
        (
            "proposed_instruction",
            OutputField(
                desc="Propose an instruction that will be used to prompt a Language Model to perform this task.",  # noqa: E501
                prefix="PROPOSED INSTRUCTION:",
            ),
        )
    )
    signature = make_signature(
        dict(fields),
        "Use the information below to learn about a task that we are trying to solve using calls to an LM, then generate a new instruction that will be used to prompt a Language Model to better solve the task.",  # noqa: E501
        signature_name="GenerateSingleModuleInstruction",
    )
    return Predict(signature)


def create_example_string(fields: Any, example: Any) -> str:
    return "\n".join(
        f"{field.json_schema_extra['prefix']} {example.get(name)}" for name, field in fields.items()
    )


def _is_leaf(module: Any) -> bool:
    # DSPy 2.4's Predict and ChainOfThought (a Predict there) had no sub-modules to show.
    return isinstance(module, Predict | ChainOfThought)


def get_dspy_source_code(module: Any) -> str:
    """The program's code as DSPy 2.4.17 showed it to the prompt model.

    Its own class's source (except for a bare ``Predict`` / ``ChainOfThought``), preceded by its
    predictors' string signatures and its sub-modules' code. A predictor over a class-based
    signature raised in DSPy 2.4 (the proposer then ran without program awareness): so here.
    """
    header: list[str] = []
    base_code = ""
    if type(module).__name__ not in ("Predict", "ChainOfThought"):
        base_code = inspect.getsource(type(module))
    if _is_leaf(module):
        return "\n\n".join(header) + "\n\n" + base_code
    completed: set[Any] = set()
    for value in list(module.__dict__.values()):
        try:
            iterable = iter(value)
        except TypeError:
            iterable = iter([value])
        for item in iterable:
            if item in completed:
                continue
            if _is_leaf(item):
                signature = item.signature
                if signature is not None:
                    if signature.__name__ != "StringSignature":
                        raise TypeError("'NoneType' object is not subscriptable")
                    if "Signature_sig" not in completed:
                        header.append(str(signature))
                        completed.add("Signature_sig")
            if isinstance(item, Module):
                code = get_dspy_source_code(item).strip()
                if code not in completed:
                    header.append(code)
                    completed.add(code)
            completed.add(item)
    return "\n\n".join(header) + "\n\n" + base_code


# ---- proposal -------------------------------------------------------------------------------


class GenerateModuleInstruction(Module):
    """Describe the program and the module, then propose an instruction (DSPy 2.4.17)."""

    def __init__(  # noqa: PLR0917 - DSPy 2.4's signature
        self,
        program_code_string: str | None = None,
        use_dataset_summary: bool = True,
        program_aware: bool = False,
        use_task_demos: bool = True,
        use_instruct_history: bool = True,
        use_tip: bool = True,
    ) -> None:
        super().__init__()
        self.use_dataset_summary = use_dataset_summary
        self.program_aware = program_aware
        self.use_task_demos = use_task_demos
        self.use_instruct_history = use_instruct_history
        self.use_tip = use_tip
        self.program_code_string = program_code_string
        self.describe_program = Predict(DescribeProgram)
        self.describe_module = Predict(DescribeModule)
        self.generate_module_instruction = generate_instruction_class(
            use_dataset_summary=use_dataset_summary,
            program_aware=program_aware,
            use_task_demos=use_task_demos,
            use_instruct_history=use_instruct_history,
            use_tip=use_tip,
        )

    async def aforward(  # noqa: PLR0917 - DSPy 2.4's signature
        self,
        demo_candidates: Any,
        pred_i: int,
        demo_set_i: int,
        program: Any,
        previous_instructions: str,
        data_summary: str,
        max_demos: int = 3,
        tip: str | None = None,
    ) -> Prediction:
        task_demos = ""
        signature = get_signature(program.predictors()[pred_i])
        basic_instruction = signature.instructions
        shown = 0
        for example in demo_candidates[pred_i][demo_set_i]:
            if "augmented" in example.keys():  # noqa: SIM118 - an Example, not a dict
                task_demos += f"{create_example_string(signature.fields, example)}\n"
                shown += 1
                if shown >= max_demos:
                    break

        program_description = "Not available"
        module_code = "Not provided"
        if self.program_aware:
            try:
                described = await self.describe_program.acall(
                    program_code=self.program_code_string, program_example=task_demos
                )
                program_description = strip_prefix(described.program_description)
                inputs = [
                    n
                    for n, f in signature.fields.items()
                    if f.json_schema_extra.get("__dspy_field_type") == "input"
                ]
                outputs = [
                    n
                    for n, f in signature.fields.items()
                    if f.json_schema_extra.get("__dspy_field_type") != "input"
                ]
                module_code = f"{_class_name(program.predictors()[pred_i])}({', '.join(inputs)}) -> {', '.join(outputs)}"  # noqa: E501
            except Exception:
                logger.info("could not describe the program; proposing without it")
                self.program_aware = False

        module_description = (
            await self.describe_module.acall(
                program_code=self.program_code_string,
                program_description=program_description,
                program_example=task_demos,
                module=module_code,
                max_depth=10,
            )
        ).module_description
        instruct = await self.generate_module_instruction.acall(
            dataset_description=data_summary,
            program_code=self.program_code_string,
            program_description=program_description,
            module=module_code,
            task_demos=task_demos,
            tip=tip,
            basic_instruction=basic_instruction,
            previous_instructions=previous_instructions,
            module_description=module_description,
        )
        return Prediction(proposed_instruction=strip_prefix(instruct.proposed_instruction))


def _class_name(predictor: Any) -> str:
    # In DSPy 2.4 a ChainOfThought was itself the predictor; here it owns a Predict.
    return (
        "ChainOfThought" if "extended_signature" in predictor.__dict__ else type(predictor).__name__
    )


class GroundedProposer:
    """Propose instructions per predictor and demo set (DSPy 2.4.17's ``GroundedProposer``).

    Build it with :meth:`create` (the dataset summary needs the prompt model).
    """

    def __init__(  # noqa: PLR0917 - DSPy 2.4's signature
        self,
        prompt_model: Any,
        program: Any,
        view_data_batch_size: int = 10,
        use_dataset_summary: bool = True,
        program_aware: bool = True,
        use_task_demos: bool = True,
        use_instruct_history: bool = True,
        use_tip: bool = True,
        set_tip_randomly: bool = True,
        set_history_randomly: bool = True,
    ) -> None:
        self.program_aware = program_aware
        self.use_dataset_summary = use_dataset_summary
        self.use_task_demos = use_task_demos
        self.use_instruct_history = use_instruct_history
        self.use_tip = use_tip
        self.set_tip_randomly = set_tip_randomly
        self.set_history_randomly = set_history_randomly
        self.view_data_batch_size = view_data_batch_size
        self.prompt_model = prompt_model if prompt_model else current_settings().lm
        self.program_code_string: str | None = None
        if self.program_aware:
            try:
                self.program_code_string = get_dspy_source_code(program)
            except Exception as exc:
                logger.warning(
                    "Error getting source code: %s. Running without program aware proposer.", exc
                )
                self.program_aware = False
        self.data_summary = ""

    @classmethod
    async def create(
        cls, prompt_model: Any, program: Any, trainset: Sequence[Example], **kwargs: Any
    ) -> GroundedProposer:
        proposer = cls(prompt_model, program, **kwargs)
        proposer.data_summary = await create_dataset_summary(
            trainset, proposer.view_data_batch_size, prompt_model
        )
        return proposer

    async def propose_instructions_for_program(  # noqa: PLR0917 - DSPy 2.4's signature
        self,
        trainset: Sequence[Example],
        program: Any,
        demo_candidates: Any,
        trial_logs: dict[int, Any],
        N: int,
        T: float,
        tip: str | None = None,
    ) -> dict[int, list[str]]:
        """``{predictor index: [instruction per demo set]}``."""
        if self.set_history_randomly:
            self.use_instruct_history = random.random() < 0.5
        plans = []
        # Every random draw and every Predict (each draws its stage id) in DSPy 2.4's order.
        for pred_i, _predictor in enumerate(program.predictors()):
            for demo_set_i in range(len(demo_candidates[0])):
                selected_tip = tip
                if self.set_tip_randomly:
                    selected_tip = TIPS[random.choice(list(TIPS.keys()))]
                    self.use_tip = bool(selected_tip)
                history = ""  # no trial logs yet: MIPROv2 proposes before any trial
                generator = GenerateModuleInstruction(
                    program_code_string=self.program_code_string,
                    use_dataset_summary=self.use_dataset_summary,
                    program_aware=self.program_aware,
                    use_task_demos=self.use_task_demos,
                    use_instruct_history=bool(self.use_instruct_history and history),
                    use_tip=self.use_tip,
                )
                plans.append((pred_i, demo_set_i, generator, history, selected_tip))
        lm = self.prompt_model

        def job(plan: tuple[int, int, GenerateModuleInstruction, str, str | None]) -> Any:
            pred_i, demo_set_i, generator, history, selected_tip = plan

            async def run() -> str:
                with context(lm=lm):
                    proposed = await generator.acall(
                        demo_candidates=demo_candidates,
                        pred_i=pred_i,
                        demo_set_i=demo_set_i,
                        program=program,
                        data_summary=self.data_summary,
                        previous_instructions=history,
                        tip=selected_tip,
                    )
                return strip_prefix(proposed.proposed_instruction)

            return run

        limit = 1 if scripted_lm(self.prompt_model) else None
        # As DSPy 2.4: the prompt model samples at T for the proposals, then gets its own back.
        # Nothing else calls the prompt model during this step.
        original_temperature = lm.kwargs.get("temperature")
        lm.kwargs["temperature"] = T
        try:
            results = await gather_bounded([job(plan) for plan in plans], limit)
        finally:
            lm.kwargs["temperature"] = original_temperature
        proposed: dict[int, list[str]] = {}
        for (pred_i, *_), instruction in zip(plans, results, strict=True):
            proposed.setdefault(pred_i, []).append(instruction)
        return proposed
