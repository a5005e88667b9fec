"""`tgispy demo` (issue 20): five timed steps, no placeholder or empty answer passed off as one.

Run as a user runs it (a subprocess): once on ``--backend sim`` (a fresh sim server, instant),
once with ``--url`` against the suite's one real SmolLM2 server (``model_server``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tgispy._demo import SIM_SCRIPT, result_label, stats_lines

if TYPE_CHECKING:
    from tgispy.server import ServerHandle

TGISPY = [sys.executable, "-m", "tgispy.cli"]
_HEADING = re.compile(r"^\[(\d)/5\] ")
_TIMING = re.compile(r"^  \((\d+\.\d\d) s\)$")
_RESULT = re.compile(r"^  => (?P<name>[^:]+): (?P<value>.*?)(?:  \[(?P<label>[^\]]+)\])?$")


def demo(*args: str) -> str:
    out = subprocess.run(
        [*TGISPY, "demo", *args], capture_output=True, text=True, timeout=110, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def steps(stdout: str) -> dict[int, list[str]]:
    """The lines of each numbered step; every step must end with its timing line."""
    found: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = found.setdefault(int(heading.group(1)), [line])
        elif current is not None:
            current.append(line)
            if _TIMING.match(line):
                current = None
    assert sorted(found) == [1, 2, 3, 4, 5], stdout
    for number, lines in found.items():
        assert _TIMING.match(lines[-1]), (number, lines)
    return found


def results(lines: list[str]) -> list[tuple[str, str, str | None]]:
    """(name, value, label) of each ``=>`` result line of a step."""
    out = []
    for line in lines:
        if line.startswith("  => "):
            match = _RESULT.match(line)
            assert match, line
            out.append((match["name"], match["value"], match["label"]))
    return out


def values(lines: list[str]) -> dict[str, str]:
    return {name: value for name, value, _ in results(lines)}


def assert_shape(story: dict[int, list[str]], *, labels_allowed_in: set[int]) -> None:
    """Every result is a real value, or (only where allowed) labelled and explained."""
    for number, lines in story.items():
        for i, line in enumerate(lines):
            if not line.startswith("  => "):
                continue
            _, value, label = results([line])[0]
            real = "${" not in value and value.strip("'\" ") != ""
            if label is None:
                assert real, (number, line)
            else:
                assert number in labels_allowed_in, (number, line)
                assert label in {"placeholder, not an answer", "empty, not an answer"}
                assert not real, line  # a label only where the value really is not a result
                assert lines[i + 1].startswith("     Why: "), lines  # and one sentence why


def test_sim_demo_tells_the_five_timed_steps_with_real_looking_results() -> None:
    stdout = demo("--backend", "sim")
    story = steps(stdout)
    assert_shape(story, labels_allowed_in=set())  # the sim's script holds no placeholder
    assert "every completion below is scripted" in stdout
    assert any("DSPy 2.4's completion template" in line for line in story[1][:1])
    # the seed's lines, verbatim, and the _generate dict
    assert "    qa = dspy.ChainOfThought('question -> answer')" in story[1]
    assert "'prompt': 'What is the capital of Paris?'" in "\n".join(story[1])
    # (b) the JSON adapter's answer and the prompt it sent, with its grammar
    assert values(story[2])["response.answer"] == (repr("Paris is the capital of France."))
    assert "  the prompt sent (decoding constrained by a json grammar):" in story[2]
    assert '     | Output: a JSON object {"rationale": string, "answer": string}' in story[2]
    # (c) typed values: an int and a Literal
    assert "  => answer: 4  (int)" in story[3]
    assert "  => sentiment: 'positive'" in story[3]
    # (d) the stream's pieces add up to the scripted text
    assert f"joined: {SIM_SCRIPT[-1]!r}" in "\n".join(story[4])
    # (e) history and one stats line for the one replica: the 7 requests of the story
    assert any(line.startswith("  replica http://127.0.0.1:") for line in story[5])
    assert any(" 7 requests, 0 failures" in line for line in story[5])
    assert "server stopped." in stdout


@pytest.mark.model
def test_real_model_demo_answers_through_the_json_adapter(model_server: ServerHandle) -> None:
    stdout = demo("--url", model_server.url)
    story = steps(stdout)
    # Only the seed step (DSPy 2.4's template on a 135M model) may show a labelled non-answer.
    assert_shape(story, labels_allowed_in={1})
    for number in (2, 3, 4):
        assert results(story[number]), story[number]
    legs = values(story[3])["answer"]
    assert re.fullmatch(r"-?\d+  \(int\)", legs), legs
    assert values(story[3])["sentiment"] in {
        "'positive'",
        "'negative'",
    }


def test_result_label_tells_placeholders_and_empty_strings_from_answers() -> None:
    assert result_label("${answer}") == "placeholder, not an answer"
    assert result_label(" Answer: ${answer} ") == "placeholder, not an answer"
    assert result_label("") == result_label(" \n") == "empty, not an answer"
    assert result_label("Paris") is None
    assert result_label(0) is None  # a typed 0 is a result


def test_stats_lines_summarize_each_replica() -> None:
    stats = {
        "http://a:1": {"requests": 2, "failures": 1, "latency_p50": 0.25, "latency_p99": 2.0},
        "http://b:2": {"requests": 0, "failures": 0, "latency_p50": None, "latency_p99": None},
    }
    assert stats_lines(stats) == [
        "http://a:1: 2 requests, 1 failures, latency p50 0.25 s, p99 2.00 s",
        "http://b:2: 0 requests, 0 failures, no latency yet",
    ]


def test_a_failing_step_is_labelled_and_the_demo_exits_1() -> None:
    # Nothing listens on port 1: every step that calls the LM fails, shown as such, no traceback.
    out = subprocess.run(
        [*TGISPY, "demo", "--url", "http://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    story = steps(out.stdout)
    for number in (1, 2, 3, 4):
        (result,) = results(story[number])
        assert result[0] == "error" and result[2] == "failed, not an answer", result
