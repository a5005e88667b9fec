"""Bridges from tgispy to other LM frameworks; each lives in its own module behind an extra.

Importing this package imports no framework. Import the bridge you need:

* :mod:`tgispy.integrations.dspy` -- tgispy's TGI fleet client as a DSPy 3.4 engine
  (``pip install 'tgispy[dspy]'``).
"""

__all__: list[str] = []


def __dir__() -> list[str]:
    return sorted(__all__)
