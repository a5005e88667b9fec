"""ProgramOfThought's code runs in a sandboxed process: files, sockets, processes, runaway loops
and memory hogs are stopped with a clear error; ordinary code gives DSPy 2.4's results."""

from __future__ import annotations

import socket

import pytest

import tgispy as dspy
from tgispy.primitives.python_interpreter import (
    CodePrompt,
    InterpreterError,
    PythonInterpreter,
    SandboxLimits,
)
from tgispy.utils.dummies import DummyLM

FAST = SandboxLimits(timeout=3.0, memory_mb=512)


def _run(code: str, imports: list[str] | None = None, limits: SandboxLimits = FAST) -> object:
    return PythonInterpreter({"print": print}, imports, limits=limits).execute(code)


def test_reading_a_users_file_is_refused(tmp_path: object) -> None:
    with pytest.raises(InterpreterError, match="does not allow opening '/etc/hostname'") as info:
        _run("open('/etc/hostname').read()")
    assert info.value.kind == "PermissionError"


def test_opening_a_socket_is_refused() -> None:
    # A listening socket the code would reach if the sandbox let it.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}))"
        with pytest.raises(InterpreterError, match="does not allow socket") as info:
            _run(code, ["socket"])
    assert info.value.kind == "PermissionError"


def test_an_endless_loop_is_stopped_at_the_timeout() -> None:
    limits = SandboxLimits(timeout=1.5, memory_mb=512)
    code = "total = 0\nfor i in range(10 ** 12):\n    total = total + i"
    with pytest.raises(InterpreterError, match=r"timed out after 1\.5 s") as info:
        _run(code, limits=limits)
    assert info.value.kind == "TimeoutError"


def test_processes_and_memory_hogs_are_stopped() -> None:
    with pytest.raises(InterpreterError, match=r"does not allow os\.system"):
        _run("import os\nos.system('true')", ["os"])
    with pytest.raises(InterpreterError, match="memory cap") as info:
        _run("x = [0] * (10 ** 10)")
    assert info.value.kind == "MemoryError"


def test_scratch_files_results_state_and_dspy_errors() -> None:
    interpreter = PythonInterpreter({"print": print}, ["math"], limits=FAST)
    code = "f = open('notes.txt', 'w')\nf.write('hi')\nimport math\nx = math.sqrt(16)\nprint(x)\nx"
    assert interpreter.execute(code) == 4.0
    assert interpreter.last_stdout == "4.0\n"
    assert interpreter.state["x"] == 4.0  # JSON state is kept between runs
    assert interpreter.execute("y = (x, 2)\ny") == "(4.0, 2)"  # non-JSON results come back as str
    with pytest.raises(InterpreterError) as info:
        interpreter.execute("while True:\n    pass")
    assert (
        str(info.value) == "Evaluation of the code stopped at node 0. See:\nWhile is not supported."
    )
    with pytest.raises(InterpreterError, match="not permitted to import"):
        interpreter.execute("import os")
    assert CodePrompt("1 + 1", code_type="python").execute()[0] == 2


def test_action_space_must_cross_the_process_boundary() -> None:
    with pytest.raises(dspy.ConfigError, match="builtins"):
        PythonInterpreter({"helper": lambda: 1})


def test_program_of_thought_shows_the_sandbox_error_and_recovers() -> None:
    lm = DummyLM(
        [
            "read it.\nCode:\n```python\ndata = open('/etc/hostname').read()\ndata\n```",
            "compute.\nCode:\n```python\nresult = 6 * 7\n```",
            "it is 42.\nAnswer: 42",
        ]
    )
    dspy.configure(lm=lm)
    program = dspy.ProgramOfThought("question -> answer", limits=FAST)
    assert program(question="6 times 7?").answer == "42"
    assert "Error: the sandbox does not allow opening '/etc/hostname'" in lm.history[1]["prompt"]
    assert "Code Output: 42" in lm.history[2]["prompt"]
