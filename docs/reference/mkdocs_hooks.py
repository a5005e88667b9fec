"""mkdocs hooks: the docs build fails on every warning except the known docstring issues below.

``make test`` builds the docs with ``--strict``. A docstring griffe cannot parse is a warning,
and so an error; the ones listed here are in modules this build does not own and wait for their
owners. Each is shown as INFO (still visible in the build log) while it lasts; remove its entry
once the docstring is fixed, and the build checks it again.
"""

from __future__ import annotations

import logging
from typing import Any

#: (source file, start of griffe's message): docstring issues waiting for their modules' owners
KNOWN_DOCSTRING_ISSUES: tuple[tuple[str, str], ...] = ()


class _KnownIssues(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for path, start in KNOWN_DOCSTRING_ISSUES:
            if f"{path}:" in message and start in message:
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.msg, record.args = f"known docstring issue (not failing): {message}", ()
        return True


def on_startup(**kwargs: Any) -> None:
    logging.getLogger("mkdocs.plugins.griffe").addFilter(_KnownIssues())
