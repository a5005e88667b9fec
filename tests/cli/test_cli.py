"""The `tgispy` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TGISPY = [sys.executable, "-m", "tgispy.cli"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TGISPY, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_help_lists_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    commands = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("    ")}
    assert {"demo", "serve", "run", "bench"} <= commands


def test_the_cli_uses_argparse_only() -> None:
    # One parser library (the server's argparse); no CLI framework is imported.
    code = (
        "import sys, tgispy.cli; tgispy.cli.main(['run', '--help']) if False else None; "
        "print(sorted(m for m in ('typer', 'click', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_usage_errors_exit_2_with_argparse_messages() -> None:
    out = run("run", "only-one-argument.py")
    assert out.returncode == 2
    assert "the following arguments are required: data" in out.stderr
    out = run("run", "merge")
    assert out.returncode == 2 and "RESULTS.jsonl" in out.stderr


def test_demo_runs_the_seed_example_and_stops_the_server() -> None:
    out = run("demo", "--backend", "sim")
    assert out.returncode == 0, out.stderr
    assert "== ChainOfThought('question -> answer') ==" in out.stdout
    assert "answer:" in out.stdout
    assert "'prompt': 'What is the capital of Paris?'" in out.stdout
    assert "Reasoning: Let's think step by step in order to" in out.stdout  # inspect_history
    assert "server stopped." in out.stdout


def test_serve_forwards_to_the_server_parser() -> None:
    out = run("serve", "--help")
    assert out.returncode == 0
    assert "--backend" in out.stdout and "--sim-text" in out.stdout


def test_serve_refuses_a_public_host_without_allow_remote() -> None:
    out = run("serve", "--backend", "sim", "--host", "0.0.0.0", "--port", "0")
    assert out.returncode != 0
    assert "--allow-remote" in (out.stdout + out.stderr)


def test_bench_is_found_in_a_source_checkout() -> None:
    out = run("bench", "--help")
    assert out.returncode == 0
    assert "--quick" in out.stdout
    assert (Path(__file__).resolve().parents[2] / "bench" / "run_all.py").exists()


def test_run_scores_a_program_file_over_jsonl(tmp_path: Path) -> None:
    from tgispy.server import start_server

    program = tmp_path / "qa.py"
    program.write_text(
        "import tgispy as dspy\n\nprogram = dspy.ChainOfThought('question -> answer')\n"
    )
    data = tmp_path / "dev.jsonl"
    rows = ['{"question": "Capital of France?", "answer": "Paris"}'] * 3
    rows.append('{"question": "Capital of Italy?", "answer": "Rome"}')
    data.write_text("\n".join(rows) + "\n")
    out_file = tmp_path / "preds.jsonl"
    # The sim answers requests in arrival order from this cycle: with the seed's stop=["\n"], a
    # ChainOfThought call is a rationale request, then a continuation request for the answer.
    cycle = ["--sim-text", " find the capital.", "--sim-text", " Paris"]
    with start_server(["--backend", "sim", *cycle]) as server:
        out = run(
            "run",
            str(program),
            str(data),
            "--lm-url",
            server.url,
            "--metric",
            "answer_exact_match",
            "--inputs",
            "question",
            "--num-threads",
            "1",
            "--no-progress",
            "--no-cache",
            "--output",
            str(out_file),
        )
    assert out.returncode == 0, out.stderr
    assert "3 / 4" in out.stdout + out.stderr  # three Paris answers right, Rome wrong
    lines = out_file.read_text().splitlines()
    assert len(lines) == 6  # a header, one line per example, a summary
    assert '"tgispy_results": 1' in lines[0]
