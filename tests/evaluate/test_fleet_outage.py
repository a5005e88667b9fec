"""One of two sim replicas dies mid-run: infra failures are reported apart, and retried.

Two ``tgispy serve --backend sim`` processes on 127.0.0.1 (each answer takes 0.3 s); the client
routes round robin with one attempt per request and no ejection, four examples in flight. The
replica is killed (SIGKILL) while requests are in flight on it: those fail (an infrastructure
failure, not a wrong answer); later requests fail over to the live replica at once (a refused
connection is never an attempt). The replica is started again, on its port, later in the run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tgispy as dspy
from tgispy.evaluate import Evaluate, answer_exact_match
from tgispy.evaluate._records import read_results
from tgispy.server import ServerHandle, start_server
from tgispy.tgi import RetryPolicy, RoutingPolicy
from tgispy.tgi._transport import close_sessions

N = 20
KILL_AT = 8
BACK_AT = 14
SIM = ["--backend", "sim", "--sim-text", "Paris", "--sim-prefill-latency", "0.3"]


class Fleet:
    """Replica A stays up; replica B can be killed and brought back on its port."""

    def __init__(self) -> None:
        self.a = start_server(SIM, timeout=30.0)
        self.b: ServerHandle = start_server(SIM, timeout=30.0)
        self.b_port = self.b.port

    def kill_b(self) -> None:
        self.b.process.kill()
        self.b.stop(timeout=5.0)

    def restart_b(self) -> None:
        self.b = start_server([*SIM, "--port", str(self.b_port)], timeout=30.0)

    def stop(self) -> None:
        self.a.stop(timeout=5.0)
        self.b.stop(timeout=5.0)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    # Shared by both runs: each kills B and brings it back before it ends.
    fleet = Fleet()
    try:
        yield fleet
    finally:
        fleet.stop()


def lm(fleet: Fleet) -> Any:
    return dspy.HFClientTGI(
        model="tgispy/sim",
        port=None,
        url=[fleet.a.url, f"http://127.0.0.1:{fleet.b_port}"],
        cache=False,
        retry=RetryPolicy(max_attempts=1),
        routing=RoutingPolicy(
            strategy="round_robin", eject_consecutive_failures=None, eject_failure_rate=None
        ),
    )


def program_with_outage(fleet: Fleet) -> Any:
    predict = dspy.Predict("question -> answer")
    started = 0

    tasks: list[asyncio.Task[None]] = []

    async def kill_soon() -> None:
        await asyncio.sleep(0.15)  # mid-way through the requests in flight
        await asyncio.to_thread(fleet.kill_b)

    async def program(question: str) -> Any:
        nonlocal started
        number, started = started, started + 1  # before any await: four run at once
        if number == KILL_AT:
            tasks.append(asyncio.create_task(kill_soon()))
        if number == BACK_AT:
            await asyncio.gather(*tasks)
            await asyncio.to_thread(fleet.restart_b)
        return await predict.acall(question=question)

    return program


def devset() -> list[dspy.Example]:
    return [
        dspy.Example(question=f"Capital of France? ({i})", answer="Paris").with_inputs("question")
        for i in range(N)
    ]


@pytest.mark.parametrize("retries", [0, 1])
async def test_a_replica_dying_mid_run_is_not_a_wrong_answer(
    fleet: Fleet, retries: int, tmp_path: Path
) -> None:
    results = tmp_path / "results.jsonl"
    evaluate = Evaluate(
        results=results,
        devset=devset(),
        metric=answer_exact_match,
        num_threads=4,
        max_errors=None,
        retry_infra_failures=retries,
    )
    try:
        with dspy.context(lm=lm(fleet)):
            score = await evaluate.acall(program_with_outage(fleet))
    finally:
        await close_sessions()
    result = evaluate.last_result
    assert result is not None and result.finished == N and result.program_errors == 0

    if retries == 0:
        # About half of the four in flight were on the killed replica.
        assert 1 <= result.infra_errors <= 4
        assert {f.type for f in result.failures} <= {
            "ConnectError",
            "TransportError",
            "AllReplicasFailedError",
            "NoHealthyReplicaError",
        }
        assert all(f.infra for f in result.failures)
        summary = read_results(results).summaries[-1]
        assert summary["infra_errors"] == result.infra_errors
        assert summary["answered_score"] == 100.0 and summary["score"] == score
        # DSPy 2.4's score counts them as wrong; the answered ones were all right.
        assert score == round(100 * (N - result.infra_errors) / N, 2)
        assert result.answered_score == 100.0
        assert f"; {result.infra_errors} infra errors (no answer from the fleet)" in (
            result.summary()
        )
    else:
        # Retried at the end, once the replica is back: nothing is lost.
        assert score == 100.0 and result.infra_errors == 0
        assert result.summary() == f"Average Metric: {N} / {N} (100.0%)"
        lines = [json.loads(line) for line in results.read_text().splitlines()[1:-1]]
        summary = json.loads(results.read_text().splitlines()[-1])["tgispy_summary"]
        assert summary["infra_errors"] == 0 and summary["score"] == 100.0
        failed = [line["id"] for line in lines if line["status"] == "infra_error"]
        assert 1 <= len(failed) <= 4 and len(lines) == N + len(failed)
        assert all(read_results(results).records[i]["status"] == "ok" for i in failed)
