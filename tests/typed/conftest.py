"""Fixtures for typed outputs: fresh settings per test, shared signatures and types."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

import tgispy.settings  # noqa: F401 -- makes sure the module is loaded

settings_module = sys.modules["tgispy.settings"]


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # configure() writes the process-wide default; give each test its own.
    monkeypatch.setattr(settings_module, "_global", settings_module.Settings())
    token = settings_module._override.set(None)
    yield
    settings_module._override.reset(token)
