"""A griffe extension for tgispy's docstrings (Google style with Sphinx roles); see mkdocs.yml.

* ``Example:`` sections read as ``Examples:``. Google style (and Napoleon) takes the singular as a
  synonym; griffe knows only the plural and would render the singular as an admonition whose
  ``>>>`` lines are Markdown (``x["k"]`` then reads as a link). Both become doctest code blocks.
* Sphinx roles (``:class:`~tgispy.adapters.OutputSpec```) become code spans (``OutputSpec``):
  Markdown has no roles and would print the colons.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`~?([^`]+)`")


def _code_span(match: re.Match[str]) -> str:
    target = match.group(1)
    shown = target.rsplit(".", 1)[-1] if match.group(0).count("~") else target
    return f"`{shown}`"


class ExampleSections(griffe.Extension):
    """Rewrite ``Example:`` headings and Sphinx roles before docstrings are parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _SINGULAR.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(_code_span, text)
