"""`tgispy serve`'s default llama.cpp thread count (issue 20): usable cores minus one, said on the
readiness line. The measurements behind the rule are in ``tgispy/server/_threads.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tgispy.server import ServerConfig
from tgispy.server._serve import readiness_line
from tgispy.server._threads import auto_threads, choose_threads, usable_cores


@pytest.mark.parametrize(
    ("cpus", "cores", "quota", "threads"),
    [
        (1, None, None, 1),  # never zero
        (2, None, None, 1),  # the measured case: one thread, not two
        (2, 1, None, 1),
        (4, None, None, 3),
        (16, 8, None, 7),  # hyperthread siblings count once
        (64, 32, 4.0, 3),  # a container's CPU quota caps it
        (8, None, 2.5, 1),  # a fractional quota rounds down
        (8, None, 0.5, 1),
    ],
)
def test_choose_threads_leaves_one_core(
    cpus: int, cores: int | None, quota: float | None, threads: int
) -> None:
    assert choose_threads(cpus, cores, quota) == threads


def test_this_machine_is_read() -> None:
    cpus, cores, quota = usable_cores()
    assert cpus >= 1
    assert cores is None or 1 <= cores <= cpus
    assert quota is None or quota > 0
    assert auto_threads() == choose_threads(cpus, cores, quota)


def test_the_readiness_line_says_the_thread_count() -> None:
    url = "http://127.0.0.1:1"
    auto = readiness_line(ServerConfig(backend="llama"), url, "m")
    assert auto.endswith(f", threads={auto_threads()} (auto: cores - 1))")
    fixed = readiness_line(ServerConfig(backend="llama", threads=3), url, "m")
    assert fixed.endswith(", threads=3)")
    # the sim has no threads to report
    assert "threads" not in readiness_line(ServerConfig(backend="sim"), url, "m")


@pytest.mark.model
def test_tgispy_serve_prints_the_chosen_threads() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tgispy.server", "--port", "0", "--parallel", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        proc.terminate()
        proc.communicate(timeout=30)
    assert line.startswith("tgispy serve: listening on http://127.0.0.1:"), line
    assert f"threads={auto_threads()} (auto: cores - 1)" in line
