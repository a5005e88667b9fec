"""``ProgramOfThought``: generate Python, run it in the sandbox, answer from its output
(DSPy 2.4.17's prompts; the code runs in :class:`~tgispy.primitives.PythonInterpreter`'s
sandboxed process, see docs/security.md)."""

from __future__ import annotations

import logging
import re
from typing import Any

from tgispy.errors import ConfigError
from tgispy.predict._chain_of_thought import ChainOfThought
from tgispy.primitives._module import Module
from tgispy.primitives._prediction import Prediction
from tgispy.primitives._python_interpreter import CodePrompt, PythonInterpreter, SandboxLimits
from tgispy.signatures._field import FieldInfo, InputField, OutputField
from tgispy.signatures._signature import ensure_signature, make_signature

__all__ = ["ProgramOfThought"]

logger = logging.getLogger(__name__)


class ProgramOfThought(Module):
    """Answer by writing Python that computes the answer, fixing it when it fails.

    Args:
        signature: a signature with exactly one output field.
        max_iters: how many times failing code is regenerated.
        import_white_list: modules the generated code may import.
        limits: the sandbox's timeout and memory cap (:class:`SandboxLimits`).
    """

    def __init__(
        self,
        signature: Any,
        max_iters: int = 3,
        import_white_list: list[str] | None = None,
        *,
        limits: SandboxLimits | None = None,
    ) -> None:
        super().__init__()
        self.signature: Any = ensure_signature(signature)
        self.max_iters = max_iters
        self.import_white_list = import_white_list
        self.limits = limits
        self.input_fields = self.signature.input_fields
        self.output_fields = self.signature.output_fields
        if len(self.output_fields) != 1:
            raise ConfigError("PoT only supports one output field.")
        self.output_field_name = next(iter(self.output_fields))
        self.code_generate = self._cot("generate")
        self.code_regenerate = self._cot("regenerate")
        self.generate_answer = self._cot("answer")

    def _cot(self, mode: str) -> ChainOfThought:
        return ChainOfThought(
            make_signature(self._generate_signature(mode).fields, self._generate_instruction(mode))
        )

    def _generate_signature(self, mode: str) -> Any:
        fields: dict[str, FieldInfo] = dict(self.input_fields)
        code = OutputField(prefix="Code:", desc="python code that answers the question", format=str)
        if mode == "generate":
            fields["generated_code"] = code
        elif mode == "regenerate":
            fields["previous_code"] = InputField(
                prefix="Previous Code:",
                desc="previously-generated python code that errored",
                format=str,
            )
            fields["error"] = InputField(
                prefix="Error:", desc="error message from previously-generated python code"
            )
            fields["generated_code"] = code
        else:
            fields["final_generated_code"] = InputField(
                prefix="Code:", desc="python code that answers the question", format=str
            )
            fields["code_output"] = InputField(
                prefix="Code Output:", desc="output of previously-generated python code"
            )
            fields[self.output_field_name] = self.signature.fields[self.output_field_name]
        return make_signature(fields)

    def _generate_instruction(self, mode: str) -> str:
        mode_inputs = ", ".join(f"`{name}`" for name in self._generate_signature(mode).input_fields)
        mode_outputs = f"`{self.output_field_name}`"
        if mode == "generate":
            instr = [
                f"You will be given {mode_inputs} and you will respond with {mode_outputs}.",
                "Generating executable Python code that programmatically computes the correct "
                f"{mode_outputs}.",
                "After you're done with the computation, make sure the last line in your code "
                f"evaluates to the correct value for {mode_outputs}.",
            ]
        elif mode == "regenerate":
            instr = [
                f"You are given {mode_inputs} due to an error in previous code.",
                "Your task is to correct the error and provide the new `generated_code`.",
            ]
        else:
            instr = [f"Given the final code {mode_inputs}, provide the final {mode_outputs}."]
        return "\n".join(instr)

    def parse_code(self, code_data: Any) -> tuple[str, str | None]:
        """DSPy 2.4's code extraction: the ```python block, a trailing ``x = ...`` echoed."""
        code = code_data.get("generated_code", "").split("---", 1)[0].split("\n\n\n", 1)[0]
        match = re.search(r"```python[ \n](.*?)[ \n]```?", code, re.DOTALL)
        code_block = (match.group(1) if match else code).replace("\\n", "\n")
        if not code_block:
            return code, "Error: Empty code after parsing."
        if "\n" not in code_block and code_block.count("=") > 1:
            return code, "Error: Code format is not correct."
        lines = code_block.split("\n")
        last = re.match(r"^(\w+)\s*=", lines[-1].strip())
        if last and len(lines) > 1:
            code_block += "\n" + last.group(1)
        else:
            code_block = re.sub(r"([a-zA-Z_]\w* *=.*?)(?=[a-zA-Z_]\w* *=)", r"\1\n", code_block)
            code_block = re.sub(r"([a-zA-Z_]\w* *=.*?)([a-zA-Z_]\w*)$", r"\1\n\2", code_block)
        return code_block, None

    def execute_code(self, code: str) -> tuple[str, str | None, str | None]:
        """Run ``code`` in the sandbox: ``(code, output, error)``."""
        if not code:
            return code, None, "Error: Empty code before execution."
        interpreter = PythonInterpreter(
            action_space={"print": print},
            import_white_list=self.import_white_list,
            limits=self.limits,
        )
        try:
            output = str(CodePrompt(code, code_type="python").execute(interpreter=interpreter)[0])
        except Exception as exc:
            return code, None, str(exc)
        return code, output, None

    def forward(self, **kwargs: Any) -> Prediction | None:
        input_kwargs = {name: kwargs[name] for name in self.input_fields}
        code_data = self.code_generate(**input_kwargs)
        parsed_code, error = self.parse_code(code_data)
        # As in DSPy 2.4, code that did not parse is still run (and fails with a clear error).
        code, output, error = self.execute_code(parsed_code)
        hop = 0
        while hop < self.max_iters and error:
            logger.info("Error in code execution: %s", error)
            input_kwargs.update({"previous_code": code, "error": error})
            code_data = self.code_regenerate(**input_kwargs)
            parsed_code, error = self.parse_code(code_data)
            code, output, error = self.execute_code(parsed_code)
            hop += 1
            if hop == self.max_iters:
                logger.info("Max hops reached. Error persists.")
                return None
        input_kwargs.update({"final_generated_code": code, "code_output": output})
        return self.generate_answer(**input_kwargs)  # type: ignore[no-any-return]
