"""Check, once, that the installed DSPy has the engine API this bridge plugs into."""

from __future__ import annotations

__all__ = ["INSTALL_HINT", "require_dspy"]

#: the command that installs the DSPy version this bridge is tested against
INSTALL_HINT = "pip install 'tgispy[dspy]'  (DSPy 3.4: dspy==3.4.1)"


def require_dspy() -> None:
    """Raise an ImportError naming the fix unless DSPy with ``dspy.LM(engine=...)`` is importable.

    Example:
        >>> require_dspy()  # doctest: +SKIP
    """
    try:
        import dspy
        from dspy.clients.engines.base import AsyncEngine, Engine  # noqa: F401
        from dspy.lm15 import Request, Response  # noqa: F401
    except ImportError as exc:
        version = _installed_version()
        found = f" (found dspy {version}, which has no custom-engine API)" if version else ""
        raise ImportError(
            f"tgispy.integrations.dspy needs DSPy >= 3.4 with dspy.LM(engine=...){found}; "
            f"install it with: {INSTALL_HINT}"
        ) from exc
    del dspy


def _installed_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("dspy")
    except metadata.PackageNotFoundError:
        return None
