"""The engine tests' real llama.cpp server: ``llama_server`` is the session fixture of
tests/conftest.py (tests/_llama_server.py), shared with the other test directories."""

from __future__ import annotations

from _llama_server import CTX_PER_SLOT, SLOTS, LlamaServer, _model_path

__all__ = ["CTX_PER_SLOT", "SLOTS", "LlamaServer", "_model_path"]
