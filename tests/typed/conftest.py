"""Fixtures for typed outputs: fresh settings per test, shared signatures and types."""

from __future__ import annotations
