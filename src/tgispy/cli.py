"""The ``tgispy`` command line: ``demo``, ``serve``, ``run`` (and ``run merge``) and ``bench``.

One parser library, :mod:`argparse` from the standard library: ``tgispy serve`` already owns an
argparse parser (the server's, shared with ``python -m tgispy.server``), so the whole CLI uses
the same one and ``pip install tgispy`` pulls no CLI framework. ``serve`` and ``bench`` forward
their arguments untouched to their own parsers.

Example:
    >>> main(["run", "qa.py", "dev.jsonl", "--lm-url", "http://127.0.0.1:8080"])  # doctest: +SKIP
    Average Metric: 2 / 3 (66.7%)
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

SEED_QUESTION = "What is the capital of Paris?"

#: commands whose arguments go, untouched, to a parser of their own
_FORWARDED = {
    "serve": "Run the embedded TGI-compatible server (see `tgispy serve --help`).",
    "bench": "Run every benchmark against its anchors (--quick: under 5 minutes); see bench/.",
    "serve-rm": "Serve a BM25 index of a passage file over ColBERTv2's HTTP protocol.",
    "run-dspy2": "Run an unmodified DSPy 2.4 script (`import dspy`) on tgispy, this process only.",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``tgispy`` parser (``serve`` and ``bench`` forward to their own parsers)."""
    parser = argparse.ArgumentParser(
        prog="tgispy",
        description="DSPy-style LM programs over text-generation-inference servers.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in _FORWARDED.items():
        commands.add_parser(name, help=help_text, add_help=False)

    demo = commands.add_parser(
        "demo",
        help="Start the embedded server and show, step by step, what tgispy does with it.",
        description="Start the embedded server; run the seed page's example (DSPy 2.4's "
        "template), the same program through the JSON adapter, typed outputs, a stream, "
        "history and replica stats, each timed; stop the server. --backend sim: instant, "
        "scripted texts.",
    )
    demo.add_argument("--backend", default="llama", help="llama (real SmolLM2 model) or sim")
    demo.add_argument("--question", default=SEED_QUESTION, help="the question to ask")
    demo.add_argument(  # issue 20
        "--url", help="tell the story against this running TGI server instead (no server started)"
    )

    run = commands.add_parser(
        "run",
        help="Run a program file over a JSONL dataset, scoring it; `run merge` joins shards.",
        description="Run a program file over a JSONL dataset, scoring it when a metric is "
        "given. `tgispy run merge RESULTS-*.jsonl` reports over the results files of shards.",
    )
    _add_run_arguments(run)
    return parser


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("program", help="a .py file defining `program` (or build_program)")
    run.add_argument("data", help="a JSONL file, one example per line")
    run.add_argument(
        "--lm-url",
        action="append",
        metavar="URL",
        help="TGI base URL; repeat for replicas (default: the program's LM)",
    )
    run.add_argument("--model", default="tgi", help="model id for history and cache keys")
    run.add_argument("--metric", help="NAME (e.g. answer_exact_match), mod:fn or file.py:fn")
    run.add_argument("--inputs", help="comma-separated input field names (default: program's)")
    run.add_argument("--num-threads", type=int, default=16, help="examples in flight")
    run.add_argument("--max-errors", type=int, help="stop after this many failures")
    run.add_argument("--max-tokens", type=int, help="max new tokens per call")
    run.add_argument("--limit", type=int, help="run only the first N examples")
    run.add_argument(
        "--output",
        metavar="RESULTS.jsonl",
        help="results file: one JSON line per example, appended as each finishes",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue --output: skip the examples it holds, rerun infrastructure failures",
    )
    run.add_argument(
        "--id-field", help="the data field that identifies an example (default: inputs hash)"
    )
    run.add_argument(
        "--shard", metavar="I/N", help="run every N-th example starting at the I-th (0-based)"
    )
    run.add_argument(
        "--retry-infra-failures",
        type=int,
        default=0,
        metavar="N",
        help="rounds of rerunning examples no replica answered, at the end",
    )
    run.add_argument(
        "--cache", action=argparse.BooleanOptionalAction, default=True, help="use the LM cache"
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a progress bar",
    )
    run.add_argument(
        "--table", type=int, default=0, metavar="N", help="print a table of the first N results"
    )


def _merge_parser() -> argparse.ArgumentParser:
    merge = argparse.ArgumentParser(
        prog="tgispy run merge",
        description="Report over the results files of a sharded run, as one run over all the "
        "data would.",
    )
    merge.add_argument("results", nargs="+", metavar="RESULTS.jsonl")
    return merge


# -- issue 20 (the demo's story lives in tgispy._demo): begin --
def _demo(backend: str, question: str, url: str | None = None) -> int:
    from tgispy._demo import run_demo

    return run_demo(backend, question, url)


# -- issue 20: end --


def _run(args: argparse.Namespace) -> int:
    from tgispy.evaluate._run import run_program

    return run_program(
        args.program,
        args.data,
        lm_url=args.lm_url,
        model=args.model,
        metric=args.metric,
        inputs=[i.strip() for i in args.inputs.split(",")] if args.inputs else None,
        num_threads=args.num_threads,
        max_errors=args.max_errors,
        max_tokens=args.max_tokens,
        limit=args.limit,
        output=args.output,
        resume=args.resume,
        id_field=args.id_field,
        shard=args.shard,
        retry_infra_failures=args.retry_infra_failures,
        cache=args.cache,
        display_progress=args.progress,
        display_table=args.table,
    )


def _bench(args: Sequence[str]) -> int:
    """Run ``bench/run_all.py`` of a source checkout, forwarding the arguments."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "run_all.py"
    if not script.exists():
        print(
            "tgispy bench runs from a source checkout (it needs bench/ and Debian's nginx); "
            "clone the repository and run `make bench` there.",
            file=sys.stderr,
        )
        return 2
    return subprocess.call([sys.executable, str(script), *args])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tgispy`` script; returns the exit status.

    Example:
        >>> main(["serve", "--backend", "sim", "--port", "8080"])  # doctest: +SKIP
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        from tgispy.server import main as server_main

        return server_main(args[1:])
    if args and args[0] == "bench":
        return _bench(args[1:])
    if args and args[0] == "serve-rm":
        from tgispy.retrieve._serve import main as serve_rm

        return serve_rm(args[1:])
    if args and args[0] == "run-dspy2":
        from tgispy.compat.__main__ import main as run_dspy2

        return run_dspy2(args[1:])
    try:
        if args[:2] == ["run", "merge"]:
            from tgispy.evaluate._run import merge_results

            merge = _merge_parser().parse_args(args[2:])
            return merge_results(merge.results)
        parsed = build_parser().parse_args(args)
    except SystemExit as exc:  # --help exits 0, usage errors 2
        return exc.code if isinstance(exc.code, int) else 2
    if parsed.command == "demo":
        return _demo(parsed.backend, parsed.question, parsed.url)
    if parsed.command == "run":
        return _run(parsed)
    build_parser().print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
