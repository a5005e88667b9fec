"""The sandbox's child process: run as a script (``python -I _sandbox_child.py``).

Standalone on purpose: it imports nothing from tgispy (the package's import costs more than the
whole run of a small program), only the evaluator module next to it, loaded by path. See
:mod:`tgispy.primitives._sandbox` for the parent side and the guarantees.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

_BLOCKED_EVENTS = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "ctypes.",
    "pty.",
    "shutil.rmtree",
)
_PATH_EVENTS = ("os.listdir", "os.scandir", "os.chdir", "glob.glob", "os.chmod", "os.utime")
_WRITE_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link")


def _jsonable(value: Any) -> bool:
    try:
        return json.loads(json.dumps(value)) == value and str(json.loads(json.dumps(value))) == str(
            value
        )
    except (TypeError, ValueError, RecursionError):
        return False


def _install_guard(scratch: str) -> None:
    import sysconfig

    # The Python installation only (stdlib, site-packages), never sys.path as a whole: an
    # editable install or PYTHONPATH would expose the user's source tree.
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    readable = tuple(os.path.realpath(p) + os.sep for p in roots if p and os.path.isabs(p))
    writable = os.path.realpath(scratch) + os.sep

    def inside(path: Any, roots: tuple[str, ...]) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        real = os.path.realpath(os.fsdecode(path))
        return any((real + os.sep).startswith(root) for root in roots)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(_BLOCKED_EVENTS):
            raise PermissionError(f"the sandbox does not allow {event}")
        if event == "open":
            path, mode = args[0], args[1]
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                writing = True
            allowed = inside(path, (writable,)) or (not writing and inside(path, readable))
            if not allowed:
                raise PermissionError(
                    f"the sandbox does not allow opening {os.fsdecode(path)!r} (files are "
                    "limited to the scratch directory)"
                )
        elif (event in _WRITE_EVENTS and not inside(args[0], (writable,))) or (
            event in _PATH_EVENTS and not inside(args[0] or ".", (writable, *readable))
        ):
            raise PermissionError(f"the sandbox does not allow {event} outside the scratch dir")

    sys.addaudithook(hook)


def _limit(limits: Mapping[str, Any]) -> None:
    import resource

    memory = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(float(limits["timeout"])) + 1
    files = int(limits["max_file_mb"]) * 1024 * 1024
    for name, value in (
        ("RLIMIT_AS", memory),
        ("RLIMIT_CPU", cpu),
        ("RLIMIT_FSIZE", files),
        ("RLIMIT_NPROC", 0),
        ("RLIMIT_CORE", 0),
    ):
        kind = getattr(resource, name, None)
        if kind is not None:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(kind, (value, value))


def _child() -> None:
    import builtins

    spec = importlib.util.spec_from_file_location(
        "_tgispy_ast_eval", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ast_eval.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    evaluator_cls = module.Evaluator

    request = json.loads(sys.stdin.read())
    limits = request["limits"]
    cap = int(limits["max_output_chars"])
    real_stdout = sys.stdout
    printed = io.StringIO()
    _limit(limits)
    _install_guard(os.getcwd())
    state = dict(request["state"])
    for name in request["builtins"]:
        state[name] = getattr(builtins, name)
    evaluator = evaluator_cls(state, request["imports"])
    reply: dict[str, Any]
    try:
        with contextlib.redirect_stdout(printed):
            value = evaluator.execute(request["code"])
        is_json = _jsonable(value)
        reply = {
            "text": str(value)[:cap],
            "value": value if is_json else None,
            "is_json": is_json,
            "state": {
                k: v
                for k, v in evaluator.state.items()
                if k not in request["builtins"] and _jsonable(v)
            },
            "stdout": printed.getvalue()[:cap],
        }
    except MemoryError:
        reply = {
            "error": "MemoryError: the code exceeded the sandbox's memory cap",
            "kind": "MemoryError",
        }
    except RecursionError as exc:
        reply = {"error": str(exc), "kind": "RecursionError"}
    except BaseException as exc:
        reply = {"error": str(exc), "kind": type(exc).__name__}
    real_stdout.write(json.dumps(reply, default=str) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    _child()
