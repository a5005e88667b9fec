"""map_program on a local Ray instance (2 CPUs) against two sim replicas on 127.0.0.1.

Runs only where Ray is importable (``pip install 'tgispy[ray]'``): Ray is a large install and
starting it takes tens of seconds on a small machine, so it is not part of the ``test`` extra.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

ray = pytest.importorskip("ray", reason="needs Ray: pip install 'tgispy[ray]'")

import tgispy as dspy  # noqa: E402
from tgispy.evaluate import answer_exact_match  # noqa: E402
from tgispy.server import ServerHandle, start_server  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    # Ray's own modules warn about Ray's own deprecated settings.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

N = 24


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


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def test_map_program_runs_a_dataset_over_the_fleet(
    local_ray: None, replicas: list[ServerHandle]
) -> None:
    from tgispy.integrations.ray import map_program

    rows = [{"id": i, "question": f"Capital of France? ({i})", "answer": "Paris"} for i in range(N)]
    lm = functools.partial(
        dspy.HFClientTGI,
        model="tgispy/sim",
        port=None,
        url=[r.url for r in replicas],
        cache=False,
    )
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

    assert [row["id"] for row in got] == list(range(N))
    assert [row["question"] for row in got] == [row["question"] for row in rows]
    assert all(row["pred_answer"] == "Paris" and row["score"] == 1.0 for row in got)
    assert all(row["error"] is None and row["error_kind"] is None for row in got)
    assert all(row["latency_s"] > 0 for row in got)
