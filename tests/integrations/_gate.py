"""Import DSPy for the integration tests: skip on a dev box without the extra, fail in CI."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

#: the DSPy release the ``tgispy[dspy]`` extra pins and these tests run against
PINNED_DSPY = "3.4.1"

SKIP_REASON = (
    f"DSPy {PINNED_DSPY} is not installed; install the extra to run these tests: "
    "pip install 'tgispy[dspy]' (in CI, where CI is set, a missing DSPy fails instead)"
)


def import_dspy() -> ModuleType:
    """Return the ``dspy`` module, or skip the calling test module when it is missing.

    A missing DSPy is a skip only when the ``CI`` environment variable is unset; under CI it is an
    ImportError, so an install mistake can never turn the suite silently green.
    """
    try:
        import dspy
    except ImportError as exc:
        if "CI" in os.environ:
            raise ImportError(
                f"CI is set but DSPy is not importable ({exc}); the test environment must "
                f"install the dspy extra (dspy=={PINNED_DSPY})"
            ) from exc
        pytest.skip(SKIP_REASON, allow_module_level=True)
    module: ModuleType = dspy
    return module
