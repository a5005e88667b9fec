"""``python -m tgispy.compat script.py [args]`` / ``python -m tgispy.compat -m module [args]``.

Runs the script (or module) as ``__main__`` with ``dspy`` and ``dsp`` mapped to tgispy.
"""

from __future__ import annotations

import runpy
import sys

from tgispy.compat._alias import install
from tgispy.errors import ConfigError

_USAGE = "usage: python -m tgispy.compat SCRIPT.py [ARGS...] | -m MODULE [ARGS...]"


def main(argv: list[str]) -> int:
    """Run ``argv``'s script or module with the aliases installed; return the exit status."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    try:
        install()
    except ConfigError as exc:
        print(f"tgispy.compat: error: {exc}", file=sys.stderr)
        return 2
    if argv[0] == "-m":
        if len(argv) < 2:
            print(_USAGE, file=sys.stderr)
            return 2
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
