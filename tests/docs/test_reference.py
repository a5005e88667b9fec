"""The API reference (``make docs``: mkdocs + mkdocstrings) covers every public package.

The strict build itself runs in ``make test`` (``make docs``); these tests keep its inputs
complete without building: every public package and plain module has a ``:::`` page, every page
is in the nav, and the example counter behind ``python -m tests.docs._examples`` counts right.
"""

from __future__ import annotations

import re

from tests.docs._blocks import ROOT
from tests.docs._examples import has_runnable_example, public_modules, public_names

REFERENCE = ROOT / "docs" / "reference"
_DIRECTIVE = re.compile(r"^::: ([\w.]+)", re.MULTILINE)


def documented() -> set[str]:
    return {m for page in REFERENCE.glob("*.md") for m in _DIRECTIVE.findall(page.read_text())}


def test_every_public_package_has_a_reference_page() -> None:
    # Nested packages (tgispy.dsp.utils) are documented through their parent's page.
    top_level = {m for m in public_modules() if m.count(".") <= 1}
    covered = {m for m in documented() if m.count(".") <= 1} | {
        m.rsplit(".", 1)[0] for m in documented() if m.startswith("tgispy.integrations.")
    }
    assert top_level - covered == set(), "add a docs/reference page with `::: <module>`"


def test_every_reference_page_is_in_the_nav() -> None:
    nav = set(re.findall(r"reference/(\w+\.md)", (ROOT / "mkdocs.yml").read_text()))
    assert {page.name for page in REFERENCE.glob("*.md")} == nav


def test_docs_extra_is_installed_by_make() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "'.[test,server,docs,speed]'" in makefile
    assert re.search(r"^docs: .*\n\t\$\(VENV\)/bin/mkdocs build --strict$", makefile, re.M)
    assert re.search(r"^test: .*\bdocs\b", makefile, re.M)


def test_the_example_counter_tells_runnable_examples_apart() -> None:
    def documented_fn() -> None:
        """Do it.

        Example:
            >>> 1 + 1
            2
        """

    def skipped_fn() -> None:
        """Do it.

        Example:
            >>> start()  # doctest: +SKIP
        """

    def bare_fn() -> None:
        """Do it."""

    class Inherits(ValueError):
        pass

    assert has_runnable_example(documented_fn)
    assert not has_runnable_example(skipped_fn)
    assert not has_runnable_example(bare_fn)
    assert not has_runnable_example(Inherits)  # ValueError's docstring is not its own


def test_the_example_counter_sees_the_whole_public_surface() -> None:
    names = public_names()
    assert "tgispy.adapters.TemplateAdapter" in names
    assert has_runnable_example(names["tgispy.adapters.TemplateAdapter"])
    assert "tgispy.HFClientTGI" in names  # lazily loaded names are found too
    assert len(names) > 200
