"""The ``tgispy`` command line: ``demo``, ``serve``, ``run`` and ``bench``."""

from __future__ import annotations

import sys
from typing import Annotated

try:
    import typer
except ImportError as exc:  # pragma: no cover - typer is a core dependency
    raise ImportError("the tgispy CLI needs typer: pip install typer") from exc

app = typer.Typer(
    name="tgispy",
    help="DSPy-style LM programs over text-generation-inference servers.",
    no_args_is_help=True,
    add_completion=False,
)

SEED_QUESTION = "What is the capital of Paris?"


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="Run the embedded TGI-compatible server (see `tgispy serve --help`).",
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Forward to the server's own argument parser so both stay in one place."""
    from tgispy.server import main as server_main

    raise typer.Exit(server_main(list(ctx.args)))


@app.command()
def demo(
    backend: Annotated[str, typer.Option(help="llama (real SmolLM2 model) or sim")] = "llama",
    question: Annotated[str, typer.Option(help="the question to ask")] = SEED_QUESTION,
) -> None:
    """Start the embedded server, run the seed page's example against it, and stop it."""
    import tgispy as dspy
    from tgispy.server import start_server

    typer.echo(f"starting the embedded TGI server (backend={backend}) ...")
    with start_server(["--backend", backend]) as server:
        typer.echo(f"server ready at {server.url}")
        tgi = dspy.HFClientTGI(
            model="HuggingFaceTB/SmolLM2-135M-Instruct",
            port=server.port,
            url="http://127.0.0.1",
            cache=False,
        )
        dspy.configure(lm=tgi)

        # The seed page's ChainOfThought example.
        qa = dspy.ChainOfThought("question -> answer")
        response = qa(question=question)
        typer.echo("\n== ChainOfThought('question -> answer') ==")
        typer.echo(f"answer: {response.answer}")

        typer.echo("\n== tgi._generate(prompt=...) ==")
        typer.echo(repr(tgi._generate(prompt=question)))

        typer.echo("\n== inspect_history(n=1) ==")
        dspy.inspect_history(n=1)
        typer.echo(f"replica stats: {tgi.stats()}")
    typer.echo("server stopped.")


@app.command()
def run(  # noqa: PLR0917 - typer maps parameters to CLI arguments
    program: Annotated[
        str, typer.Argument(help="a .py file defining `program` (or build_program)")
    ],
    data: Annotated[str, typer.Argument(help="a JSONL file, one example per line")],
    lm_url: Annotated[
        list[str] | None,
        typer.Option("--lm-url", help="TGI base URL; repeat for replicas (default: the program's)"),
    ] = None,
    model: Annotated[str, typer.Option(help="model id for history and cache keys")] = "tgi",
    metric: Annotated[
        str | None, typer.Option(help="NAME (e.g. answer_exact_match), mod:fn or file.py:fn")
    ] = None,
    inputs: Annotated[
        str | None, typer.Option(help="comma-separated input field names (default: program's)")
    ] = None,
    num_threads: Annotated[int, typer.Option(help="examples in flight")] = 16,
    max_errors: Annotated[int | None, typer.Option(help="stop after this many failures")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="max new tokens per call")] = None,
    limit: Annotated[int | None, typer.Option(help="run only the first N examples")] = None,
    output: Annotated[str | None, typer.Option(help="write predictions to this JSONL")] = None,
    cache: Annotated[bool, typer.Option(help="use the LM cache")] = True,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    table: Annotated[int, typer.Option(help="print a table of the first N results")] = 0,
) -> None:
    """Run a program file over a JSONL dataset, scoring it when a metric is given."""
    from tgispy.evaluate._run import run_program

    raise typer.Exit(
        run_program(
            program,
            data,
            lm_url=lm_url,
            model=model,
            metric=metric,
            inputs=[i.strip() for i in inputs.split(",")] if inputs else None,
            num_threads=num_threads,
            max_errors=max_errors,
            max_tokens=max_tokens,
            limit=limit,
            output=output,
            cache=cache,
            display_progress=progress,
            display_table=table,
        )
    )


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="Run every benchmark against its anchors (--quick: under 5 minutes); see bench/.",
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run ``bench/run_all.py`` of a source checkout, forwarding the arguments."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "run_all.py"
    if not script.exists():
        typer.echo(
            "tgispy bench runs from a source checkout (it needs bench/ and Debian's nginx); "
            "clone the repository and run `make bench` there.",
            err=True,
        )
        raise typer.Exit(2)
    raise typer.Exit(subprocess.call([sys.executable, str(script), *ctx.args]))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tgispy`` script."""
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        rc = app(args=argv if argv is not None else sys.argv[1:], standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except SystemExit as exc:  # raised by click for --help and usage errors
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return int(exc.exit_code)
        raise


if __name__ == "__main__":
    sys.exit(main())
