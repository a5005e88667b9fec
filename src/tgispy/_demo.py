"""``tgispy demo``: a new user's first minutes, told in five timed steps.

The story, against a fresh embedded server (``tgispy serve``):

1. the seed page's example verbatim, on DSPy 2.4's completion template;
2. the same program through the JSON adapter, whose grammar gives a small model a real answer;
3. typed outputs (``int``, ``Literal``) that cannot fail to parse;
4. a streamed generation;
5. ``inspect_history`` and the replica stats.

A result that is a copied template placeholder (``${answer}``) or an empty string is labelled as
such, never printed as if it were an answer. ``--backend sim`` runs the same story in about a
second on scripted texts (:data:`SIM_SCRIPT`), one per request in the order the story sends them.

Example:
    >>> result_label("${answer}")
    'placeholder, not an answer'
    >>> result_label("Paris") is None
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tgispy import HFClientTGI

__all__ = [
    "MODEL_ID",
    "SEED_QUESTION",
    "SIM_SCRIPT",
    "result_label",
    "run_demo",
    "stats_lines",
    "tell_story",
]

#: the seed page's question, verbatim
SEED_QUESTION = "What is the capital of Paris?"
#: the model ``tgispy serve`` runs by default
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: the prompt of the streaming step
STREAM_PROMPT = "Paris is famous for"

#: ``--backend sim``: the scripted completion of each request, in the order the story sends them
#: (seed ChainOfThought: rationale then answer; ``_generate``; JSON ChainOfThought; ``int``;
#: ``Literal``; the stream).
SIM_SCRIPT: tuple[str, ...] = (
    " find the city that the question names.",
    " Paris is a city: it is the capital of France.",
    " Paris is the capital of France.",
    '{"rationale": "Paris is itself a capital.", "answer": "Paris is the capital of France."}',
    " 4",
    " positive",
    " its museums, its cafes and the Eiffel Tower.",
)

_PLACEHOLDER_WHY = (
    "Why: the template's format section shows the line `Answer: ${answer}`, and SmolLM2-135M "
    "copies that pattern, placeholder included, instead of answering."
)
_EMPTY_WHY = (
    "Why: the model ended its text at once (its first token was end-of-sequence); a bare "
    "question gives a 135M model nothing to continue."
)


def result_label(value: object) -> str | None:
    """Why ``value`` is not a real result (a copied placeholder, empty), or ``None`` if it is one.

    Example:
        >>> result_label("  "), result_label(4)
        ('empty, not an answer', None)
    """
    if not isinstance(value, str):
        return None
    if "${" in value:
        return "placeholder, not an answer"
    if not value.strip():
        return "empty, not an answer"
    return None


def stats_lines(stats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One short line per replica: requests, failures, latency p50 / p99.

    Example:
        >>> stats_lines({"http://127.0.0.1:3000": {"requests": 3, "failures": 0,
        ...     "latency_p50": 0.5, "latency_p99": 1.25}})
        ['http://127.0.0.1:3000: 3 requests, 0 failures, latency p50 0.50 s, p99 1.25 s']
    """
    lines = []
    for replica, row in stats.items():
        p50, p99 = row.get("latency_p50"), row.get("latency_p99")
        latency = (
            f"latency p50 {p50:.2f} s, p99 {p99:.2f} s"
            if isinstance(p50, float) and isinstance(p99, float)
            else "no latency yet"
        )
        lines.append(
            f"{replica}: {row.get('requests', 0)} requests, {row.get('failures', 0)} failures, "
            f"{latency}"
        )
    return lines


def _result(
    say: Callable[[str], None], name: str, value: object, why: str = "", note: str = ""
) -> None:
    """Print a result line (``=> name: value``), labelled when it is not a real result."""
    label = result_label(value)
    if label is None:
        say(f"  => {name}: {value!r}{note}")
        return
    say(f"  => {name}: {value!r}  [{label}]")
    if why:
        say(f"     {why}")


def _indented(say: Callable[[str], None], text: str, prefix: str = "     | ") -> None:
    for line in text.splitlines():
        say(f"{prefix}{line}".rstrip())


@contextmanager
def _timed(say: Callable[[str], None], failures: list[str], heading: str) -> Iterator[None]:
    """Print ``heading``, run the step, print its time; a tgispy error is shown, not raised."""
    from tgispy.errors import TgispyError

    say(f"\n{heading}")
    started = time.perf_counter()
    try:
        yield
    except TgispyError as exc:  # e.g. no replica answered, or a completion that does not parse
        failures.append(heading)
        say(f"  => error: {type(exc).__name__}: {exc}  [failed, not an answer]")
    say(f"  ({time.perf_counter() - started:.2f} s)")


def _say(line: str) -> None:
    print(line, flush=True)


def _server_args(backend: str) -> list[str]:
    if backend == "sim":
        return ["--backend", "sim", *(arg for text in SIM_SCRIPT for arg in ("--sim-text", text))]
    return ["--backend", backend]


def run_demo(backend: str = "llama", question: str = SEED_QUESTION, url: str | None = None) -> int:
    """Run the five-step story against a fresh embedded server (or the TGI server at ``url``).

    Returns the exit status.

    Example:
        >>> run_demo("sim")  # doctest: +SKIP
        starting the embedded TGI server (backend=sim) ...
    """
    import tgispy as dspy

    say = _say
    begun = time.perf_counter()
    if url is not None:
        say(f"using the TGI server at {url}")
        failed = tell_story(
            dspy.HFClientTGI(model=MODEL_ID, port=None, url=url, cache=False), question
        )
        say(f"\nThe whole demo took {time.perf_counter() - begun:.1f} s.")
        return 1 if failed else 0

    from tgispy.server import start_server

    say(f"starting the embedded TGI server (backend={backend}) ...")
    with start_server(_server_args(backend)) as server:
        say(f"server ready at {server.url}  ({time.perf_counter() - begun:.2f} s)")
        if backend == "sim":
            say("(backend sim: every completion below is scripted, not generated by a model)")
        failed = tell_story(
            dspy.HFClientTGI(model=MODEL_ID, port=server.port, url="http://127.0.0.1", cache=False),
            question,
        )
    say(f"\nserver stopped. The whole demo took {time.perf_counter() - begun:.1f} s.")
    return 1 if failed else 0


def tell_story(tgi: HFClientTGI, question: str = SEED_QUESTION) -> list[str]:
    """The five timed steps, printed, on the TGI client ``tgi`` (configured as the default LM).

    Returns the headings of the steps that failed with a tgispy error (shown, not raised).

    Example:
        >>> lm = dspy.HFClientTGI(model="m", port=8080, url="http://localhost")  # doctest: +SKIP
        >>> tell_story(lm)  # doctest: +SKIP
    """
    import tgispy as dspy

    say = _say
    failures: list[str] = []
    dspy.configure(lm=tgi)

    with _timed(
        say, failures, "[1/5] The seed example, verbatim, on DSPy 2.4's completion template"
    ):
        say("  == ChainOfThought('question -> answer') ==")
        say("    qa = dspy.ChainOfThought('question -> answer')")
        say(f"    response = qa(question={question!r})")
        say("    print(response.answer)")
        response = dspy.ChainOfThought("question -> answer")(question=question)
        _result(say, "response.answer", response.answer, _PLACEHOLDER_WHY)
        say("  == tgi._generate(prompt=...) ==")
        say(f"    print(tgi._generate(prompt={question!r}))")
        generated = tgi._generate(prompt=question)
        say(f"     {generated!r}")
        texts = [choice["text"] for choice in generated["choices"]]
        _result(say, "choices[0]['text']", texts[0] if texts else "", _EMPTY_WHY)

    with _timed(
        say, failures, "[2/5] The same program through the JSON adapter (grammar-constrained)"
    ):
        say("    qa = dspy.ChainOfThought('question -> answer', adapter='json')")
        response = dspy.ChainOfThought("question -> answer", adapter="json")(question=question)
        _result(say, "response.rationale", response.rationale)
        _result(say, "response.answer", response.answer)
        sent = tgi.history[-1]
        grammar = sent["kwargs"].get("grammar") or {}
        say(f"  the prompt sent (decoding constrained by a {grammar.get('type')} grammar):")
        _indented(say, sent["prompt"])

    with _timed(
        say, failures, "[3/5] Typed outputs: the grammar makes them impossible to misparse"
    ):
        say('    dspy.Predict("question -> answer: int")')
        legs = dspy.Predict("question -> answer: int")(
            question="How many legs does a cat have?"
        ).answer
        _result(say, "answer", legs, note=f"  ({type(legs).__name__})")
        say("    dspy.Predict(\"review -> sentiment: Literal['positive', 'negative']\")")
        sentiment = dspy.Predict("review -> sentiment: Literal['positive', 'negative']")(
            review="I loved this film, the acting is wonderful."
        ).sentiment
        _result(say, "sentiment", sentiment)

    with _timed(
        say, failures, "[4/5] Streaming: tgi.stream(prompt) yields text as it is generated"
    ):
        say(f"    for piece in tgi.stream({STREAM_PROMPT!r}, max_tokens=24): ...")
        pieces: list[str] = []
        for piece in tgi.stream(STREAM_PROMPT, max_tokens=24):
            print(piece if pieces else f"     {piece}", end="", flush=True)
            pieces.append(piece)
        if pieces:
            print(flush=True)
        _result(say, f"{len(pieces)} pieces, joined", "".join(pieces))

    with _timed(say, failures, "[5/5] dspy.inspect_history(n=1) and tgi.stats()"):
        dspy.inspect_history(n=1)
        for line in stats_lines(tgi.stats()):
            say(f"  replica {line}")
    return failures
