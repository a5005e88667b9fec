"""AvatarOptimizer on an Avatar-shaped program: DSPy 2.4.17 is the oracle.

Recording (outside the test suite, in a virtualenv with ``pip install dspy-ai==2.4.17``)::

    PYTHONPATH=. python tests/teleprompt/golden/avatar_dspy24.py \\
        > tests/teleprompt/golden/avatar_dspy24.json
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import random
from typing import Any

ANSWERS = {
    "After executing the given actions": "Use the calculator for numbers.",
    "incorporate the feedback": "Use the calculator for every number; search otherwise.",
    "calculator for every": "4",
    "2+2": "5",
    "": "Paris",
}
TRAINSET = [("What is 2+2?", "4"), ("Capital of France?", "Paris"), ("Capital of Peru?", "Lima")]


def build_program(dspy: Any) -> Any:
    action_output = dspy.teleprompt.ActionOutput

    class Avatarish(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.actor = dspy.Predict("question -> answer")
            self.tools = ["calculator: does arithmetic", "search: looks things up"]

        def forward(self, question: str) -> Any:
            answer = self.actor(question=question).answer
            actions = [action_output(tool_name="search", tool_input_query=question,
                                     tool_output=answer)]  # fmt: skip
            return dspy.Prediction(answer=answer, actions=actions)

    return Avatarish()


def metric(example: Any, pred: Any, trace: Any = None) -> float:
    return 1.0 if example.answer == pred.answer else 0.0


def run(dspy: Any, dummy_lm: Any, face: str = "sync") -> dict[str, Any]:
    lm = dummy_lm(dict(ANSWERS))
    dspy.settings.configure(lm=lm)
    trainset = [dspy.Example(question=q, answer=a).with_inputs("question") for q, a in TRAINSET]
    random.seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        optimizer = dspy.teleprompt.AvatarOptimizer(metric=metric, max_iters=2)
        best = optimizer.compile(build_program(dspy), trainset=trainset)
    return {
        "prompts": sorted(entry["prompt"] for entry in lm.history),
        "instruction": best.actor.signature.instructions,
    }


def main() -> None:
    import dspy  # the oracle: dspy-ai==2.4.17
    import dspy.teleprompt
    from dspy.utils.dummies import DummyLM

    header = {"dspy_version": importlib.metadata.version("dspy-ai")}
    print(json.dumps({"recorded_with": header, "expected": run(dspy, DummyLM)}, indent=1))


if __name__ == "__main__":
    main()
