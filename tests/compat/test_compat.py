"""``tgispy.compat``: unmodified ``import dspy`` / ``import dsp`` code runs on tgispy, opt-in, one
process only, and never over a real dspy that is already imported. Each case runs in a child
interpreter so this test process's modules are untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    import dspy
    from dspy.teleprompt import BootstrapFewShot
    from dspy.primitives.assertions import Assert
    from dspy.signatures.signature import Signature
    import dspy.predict.react
    import dsp
    from dsp.utils import dotdict, deduplicate
    from dspy.utils.dummies import DummyLM
    import tgispy

    assert dspy is tgispy and dsp is tgispy.dsp
    assert BootstrapFewShot is tgispy.BootstrapFewShot and Assert is tgispy.Assert
    assert dspy.predict.react.ReAct is tgispy.ReAct and Signature is tgispy.Signature
    dspy.settings.configure(lm=DummyLM(["Paris"]))
    print(dspy.Predict("question -> answer")(question=sys.argv[1]).answer, deduplicate([1, 1]))
    try:
        import dspy.predict.avatar
    except ModuleNotFoundError as exc:
        print("missing:", exc.name)
    """
)


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_script_runs_unmodified(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(SCRIPT)
    result = _python("-m", "tgispy.compat", str(script), "Capital of France?")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Paris [1]", "missing: dspy.predict.avatar"]


def test_module_form_and_usage(tmp_path: Path) -> None:
    (tmp_path / "prog_mod.py").write_text(SCRIPT)
    code = (
        "import sys, runpy; sys.path.insert(0, sys.argv[1]); "
        "sys.argv = ['x', '-m', 'prog_mod', 'Q?']; "
        "from tgispy.compat.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    result = _python("-c", code, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Paris [1]")
    assert _python("-m", "tgispy.compat").returncode == 2


def test_install_refuses_over_an_imported_real_dspy() -> None:
    code = textwrap.dedent(
        """
        import sys, types
        real = types.ModuleType("dspy")
        real.__file__ = "/site-packages/dspy/__init__.py"
        sys.modules["dspy"] = real
        import tgispy.compat
        try:
            tgispy.compat.install()
        except tgispy.ConfigError as exc:
            print("refused:", exc)
        print(tgispy.compat.installed(), sys.modules["dspy"] is real)
        """
    )
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("refused: a real 'dspy' is already imported in this process")
    assert "/site-packages/dspy/__init__.py" in first and "python -m tgispy.compat" in first
    assert second == "False True"


def test_nothing_is_aliased_without_install_and_uninstall_undoes_it() -> None:
    code = textwrap.dedent(
        """
        import sys
        import tgispy, tgispy.compat
        assert "dspy" not in sys.modules and not tgispy.compat.installed()
        tgispy.compat.install()
        tgispy.compat.install()  # twice is harmless
        import dspy, dsp.utils
        assert dspy is tgispy
        tgispy.compat.uninstall()
        assert not tgispy.compat.installed()
        assert "dspy" not in sys.modules and "dsp.utils" not in sys.modules
        print("ok")
        """
    )
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
