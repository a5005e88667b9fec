"""``ReAct``: interleave Thought, Action and Observation steps with tools (DSPy 2.4.17).

Each step is a ``Predict`` over a signature that grows with the trajectory; the model's
``Action_i`` (``Search[query]`` ... or ``Finish[answer]``) calls a tool, whose result becomes the
next ``Observation_i``. The default tool is :class:`~tgispy.retrieve.Retrieve`. Prompts are
DSPy 2.4.17's, byte for byte.
"""

from __future__ import annotations

from typing import Any

from tgispy.adapters._template import passages2text
from tgispy.errors import ConfigError
from tgispy.predict._predict import Predict
from tgispy.primitives._example import Example
from tgispy.primitives._module import Module
from tgispy.primitives._prediction import Prediction
from tgispy.signatures._field import FieldInfo, InputField, OutputField
from tgispy.signatures._signature import ensure_signature, make_signature

__all__ = ["ReAct"]


class ReAct(Module):
    """Answer by reasoning and acting with tools, for up to ``max_iters`` steps.

    Args:
        signature: a signature with exactly one output field.
        max_iters: the most Thought/Action steps.
        num_results: ``k`` of the default ``Retrieve`` tool.
        tools: objects with ``name``, ``input_variable``, ``desc`` and ``__call__(arg)``
            (default: ``[Retrieve(k=num_results)]``).

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.utils.dummies import DummyLM
        >>> dspy.configure(lm=DummyLM(["I know it.\\nAction 1: Finish[Paris]"]))
        >>> dspy.ReAct("question -> answer", tools=[])(question="Capital of France?").answer
        'Paris'
    """

    def __init__(
        self, signature: Any, max_iters: int = 5, num_results: int = 3, tools: Any = None
    ) -> None:
        super().__init__()
        self.signature: Any = ensure_signature(signature)
        self.max_iters = max_iters
        if tools is None:
            from tgispy.retrieve._retrieve import Retrieve  # retrieve imports predict's deps

            tools = [Retrieve(k=num_results)]
        self.tools: dict[str, Any] = {tool.name: tool for tool in tools}
        self.input_fields = self.signature.input_fields
        self.output_fields = self.signature.output_fields
        if len(self.output_fields) != 1:
            raise ConfigError("ReAct only supports one output field.")
        inputs_ = ", ".join(f"`{k}`" for k in self.input_fields)
        outputs_ = ", ".join(f"`{k}`" for k in self.output_fields)
        instr = []
        if self.signature.instructions is not None:
            instr.append(f"{self.signature.instructions}\n")
        instr.extend(
            [
                f"You will be given {inputs_} and you will respond with {outputs_}.\n",
                "To do this, you will interleave Thought, Action, and Observation steps.\n",
                "Thought can reason about the current situation, and Action can be the "
                "following types:\n",
            ]
        )
        self.tools["Finish"] = Example(
            name="Finish",
            input_variable=outputs_.strip("`"),
            desc=f"returns the final {outputs_} and finishes the task",
        )
        for idx, tool in enumerate(self.tools.values()):
            instr.append(f"({idx + 1}) {tool.name}[{tool.input_variable}], which {tool.desc}")
        instructions = "\n".join(instr)
        self.react = [
            Predict(make_signature(self._generate_signature(i), instructions))
            for i in range(1, max_iters + 1)
        ]

    def _generate_signature(self, iters: int) -> dict[str, FieldInfo]:
        fields: dict[str, FieldInfo] = dict(self.input_fields)
        tool_list = " or ".join(
            f"{tool.name}[{tool.input_variable}]"
            for tool in self.tools.values()
            if tool.name != "Finish"
        )
        for j in range(1, iters + 1):
            make = OutputField if j == iters else InputField
            fields[f"Thought_{j}"] = make(
                prefix=f"Thought {j}:", desc="next steps to take based on last observation"
            )
            fields[f"Action_{j}"] = make(
                prefix=f"Action {j}:",
                desc=f"always either {tool_list} or, when done, Finish[<answer>], where "
                "<answer> is the answer to the question itself.",
            )
            if j < iters:
                fields[f"Observation_{j}"] = make(
                    prefix=f"Observation {j}:",
                    desc="observations based on action",
                    format=passages2text,
                )
        return fields

    def act(self, output: Any, hop: int) -> Any:
        """Run the action of step ``hop``; return the answer on ``Finish``, else ``None``."""
        try:
            action = output[f"Action_{hop + 1}"]
            action_name, action_val = action.strip().split("\n")[0].split("[", 1)
            action_val = action_val.rsplit("]", 1)[0]
            if action_name == "Finish":
                return action_val
            result = self.tools[action_name](action_val)
            output[f"Observation_{hop + 1}"] = getattr(result, "passages", result)
        except Exception:
            output[f"Observation_{hop + 1}"] = (
                "Failed to parse action. Bad formatting or incorrect action name."
            )
        return None

    def forward(self, **kwargs: Any) -> Prediction:
        args = {key: kwargs[key] for key in self.input_fields if key in kwargs}
        action_val = None
        for hop in range(self.max_iters):
            output = self.react[hop](**args)
            output[f"Action_{hop + 1}"] = output[f"Action_{hop + 1}"].split("\n")[0]
            action_val = self.act(output, hop)
            if action_val:
                break
            args.update(output)
        observations = [args[key] for key in args if key.startswith("Observation")]
        (output_key,) = self.output_fields
        return Prediction(observations=observations, **{output_key: action_val or ""})
