"""Run model-written code in a separate, locked-down process (``ProgramOfThought``'s boundary).

The parent (:func:`run_in_sandbox`) starts ``python -I _sandbox_child.py`` with a
scrubbed environment, a fresh scratch directory as its working directory, and the request on
stdin; the child answers one JSON line on stdout. Inside the child, before any model code runs:

* resource limits: address space (``memory_mb``), CPU seconds, file size, no new processes;
* an audit hook (:func:`sys.addaudithook`, which cannot be removed) refuses sockets, process
  creation, ``ctypes``, and opening any file outside the scratch directory and the Python
  installation (read-only there);
* the code is evaluated by DSPy 2.4's interpreter subset (:mod:`tgispy.primitives._ast_eval`).

The parent kills the child at ``timeout`` seconds. Only JSON crosses back (never pickles: the
child is untrusted). See docs/security.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgispy.primitives._ast_eval import InterpreterError

__all__ = ["SandboxLimits", "SandboxResult", "run_in_sandbox"]

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_child.py")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run.

    Attributes:
        timeout: wall-clock seconds before the child is killed.
        memory_mb: address-space cap of the child, in MiB.
        max_file_mb: largest file the code may write in its scratch directory, in MiB.
        max_output_chars: longest printed output and result text kept.
    """

    timeout: float = 10.0
    memory_mb: int = 1024
    max_file_mb: int = 16
    max_output_chars: int = 100_000


@dataclass(frozen=True)
class SandboxResult:
    """What a run produced: the result's ``str``, its value when it is plain JSON, the state."""

    text: str
    value: Any
    is_json: bool
    state: dict[str, Any]
    stdout: str


def run_in_sandbox(
    code: str,
    *,
    state: Mapping[str, Any],
    builtins_in_state: list[str],
    import_white_list: list[str],
    limits: SandboxLimits,
) -> SandboxResult:
    """Evaluate ``code`` in a sandboxed child process; raise :class:`InterpreterError` on failure.

    Args:
        code: the Python code (DSPy 2.4's interpreter subset).
        state: JSON-able variables the code can read.
        builtins_in_state: names of builtins put in the state (DSPy's ``action_space``).
        import_white_list: modules the code may import.
        limits: the :class:`SandboxLimits`.
    """
    request = {
        "code": code,
        "state": dict(state),
        "builtins": builtins_in_state,
        "imports": import_white_list,
        "limits": {
            "timeout": limits.timeout,
            "memory_mb": limits.memory_mb,
            "max_file_mb": limits.max_file_mb,
            "max_output_chars": limits.max_output_chars,
        },
    }
    env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="tgispy-sandbox-") as scratch:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", _CHILD],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                timeout=limits.timeout,
                cwd=scratch,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise InterpreterError(
                f"Execution timed out after {limits.timeout:g} s (the sandbox stopped the code)",
                "TimeoutError",
            ) from None
    lines = proc.stdout.strip().splitlines()
    try:
        reply = json.loads(lines[-1]) if lines else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise InterpreterError(f"The sandboxed process failed: {detail}", "SandboxError")
    if "error" in reply:
        raise InterpreterError(str(reply["error"]), str(reply.get("kind", "InterpreterError")))
    return SandboxResult(
        text=str(reply["text"]),
        value=reply.get("value"),
        is_json=bool(reply.get("is_json")),
        state=dict(reply.get("state") or {}),
        stdout=str(reply.get("stdout", "")),
    )
