"""The HF hub route: ``datasets.load_dataset``, with an error that says what to do offline."""

from __future__ import annotations

from typing import Any

from tgispy.datasets._extras import INSTALL_HINT, require
from tgispy.errors import ConfigError

__all__ = ["load_hf_dataset"]


def load_hf_dataset(name: str, *args: Any, local_hint: str, **kwargs: Any) -> Any:
    """``datasets.load_dataset(name, *args, **kwargs)``, or a clear error when it cannot load.

    The ``datasets`` library reads the hub, or the local HF cache (``HF_DATASETS_OFFLINE=1``).
    When neither has the data the error says how to use local files instead (``local_hint``).
    """
    try:
        datasets = require("datasets", f"loading {name!r} from the HuggingFace hub")
    except ImportError as exc:
        raise ImportError(f"{exc}. Or use local files: {local_hint}") from exc
    try:
        return datasets.load_dataset(name, *args, **kwargs)
    except Exception as exc:
        if not isinstance(exc, OSError) and not type(exc).__module__.startswith(
            ("datasets", "huggingface_hub", "requests")
        ):
            raise
        raise ConfigError(
            f"could not load the dataset {name!r}: neither the HuggingFace hub nor the local "
            f"HF cache has it ({type(exc).__name__}: {exc}). Use local files instead: "
            f"{local_hint} (the 'datasets' extra: {INSTALL_HINT})"
        ) from exc
