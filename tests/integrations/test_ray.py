"""map_program on a local Ray instance (2 CPUs) against two sim replicas on 127.0.0.1.

Runs only where Ray is importable (``pip install 'tgispy[ray]'``): Ray is a large install and
starting it takes 10-20 s on a small machine, so it is not part of the ``test`` extra. Ray runs
in a child interpreter, so its processes, threads, signal and logging set-up never reach the
test process.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tgispy.server import ServerHandle, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="needs Ray: pip install 'tgispy[ray]'"
    ),
]

N = 24

DRIVER = """
import functools, json, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # Ray's own, about its own settings
import ray
import tgispy as dspy
from tgispy.evaluate import answer_exact_match
from tgispy.integrations.ray import map_program

urls, n = json.loads(sys.argv[1]), int(sys.argv[2])
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
ray.data.DataContext.get_current().enable_progress_bars = False
rows = [{"id": i, "question": f"Capital of France? ({i})", "answer": "Paris"} for i in range(n)]
lm = functools.partial(dspy.HFClientTGI, model="tgispy/sim", port=None, url=urls, cache=False)
out = map_program(
    ray.data.from_items(rows),
    dspy.Predict("question -> answer"),
    lm=lm,
    inputs=["question"],
    metric=answer_exact_match,
    max_in_flight=4,
    concurrency=2,
    batch_size=6,
)
got = sorted(out.take_all(), key=lambda row: row["id"])
ray.shutdown()
print("RESULT " + json.dumps(got))
"""


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[ServerHandle]]:
    handles = [
        start_server(["--backend", "sim", "--sim-text", "Paris"], timeout=30.0) for _ in range(2)
    ]
    try:
        yield handles
    finally:
        for handle in handles:
            handle.stop(timeout=5.0)


def test_map_program_runs_a_dataset_over_the_fleet(replicas: list[ServerHandle]) -> None:
    urls = json.dumps([r.url for r in replicas])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRIVER), urls, str(N)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line.removeprefix("RESULT "))

    assert [row["id"] for row in got] == list(range(N))
    assert [row["question"] for row in got] == [f"Capital of France? ({i})" for i in range(N)]
    assert all(row["pred_answer"] == "Paris" and row["score"] == 1.0 for row in got)
    assert all(row["error"] is None and row["error_kind"] is None for row in got)
    assert all(row["latency_s"] > 0 for row in got)
