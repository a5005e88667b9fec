"""Run unmodified DSPy 2.4 code on tgispy: ``import dspy`` and ``import dsp`` load tgispy.

Opt-in and for one process only; installing tgispy never shadows a ``dspy`` package::

    python -m tgispy.compat script.py [args]      # a script that says `import dspy`
    python -m tgispy.compat -m package.module     # a module, likewise

    import tgispy.compat; tgispy.compat.install()  # in a notebook, before `import dspy`

:func:`install` refuses (``ConfigError``) when a real ``dspy`` is already imported.
"""

from tgispy._public import publish as _publish
from tgispy.compat._alias import install, installed, uninstall

__all__ = ["install", "installed", "uninstall"]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
