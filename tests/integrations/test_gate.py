"""The DSPy extra stays optional: ``import tgispy`` never loads DSPy, a missing DSPy is explicit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._gate import PINNED_DSPY, SKIP_REASON, import_dspy


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_tgispy_and_its_integrations_package_never_import_dspy() -> None:
    out = _run(
        "import sys, tgispy, tgispy.integrations, tgispy.lm._tgi, tgispy.tgi\n"
        "loaded = sorted(m for m in sys.modules if m == 'dspy' or m.startswith(('dspy.', "
        "'litellm')))\n"
        "print(loaded)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_bridge_without_dspy_raises_an_import_error_naming_the_extra() -> None:
    # sys.modules["dspy"] = None makes "import dspy" fail as if it were not installed
    out = _run(
        "import sys; sys.modules['dspy'] = None\n"
        "try:\n"
        "    import tgispy.integrations.dspy\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'tgispy[dspy]'" in out.stdout


def test_a_missing_dspy_skips_with_the_install_command_only_outside_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dspy", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        import_dspy()
    assert "pip install 'tgispy[dspy]'" in str(skipped.value)
    assert str(skipped.value) == SKIP_REASON

    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError, match=f"dspy=={PINNED_DSPY}"):
        import_dspy()


def test_the_installed_dspy_is_the_pinned_release() -> None:
    dspy = import_dspy()
    assert dspy.__version__ == PINNED_DSPY, (
        f"the dspy extra pins {PINNED_DSPY}; the bridge is tested against that engine API"
    )
