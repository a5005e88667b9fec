"""The generation core (stops, limits, EOS, best_of) over a scripted engine."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgispy.server._generation import (
    Plan,
    Step,
    StopMatcher,
    generate,
    generate_best_of,
    generate_steps,
)
from tgispy.server._problems import Problem
from tgispy.server._types import EngineEnd, EngineRequest, Sampling, TokenOut

EOS = TokenOut(2, "<|im_end|>", -0.1, special=True)


def tok(text: str, logprob: float = -0.5) -> TokenOut:
    return TokenOut(100 + len(text), text, logprob)


class ScriptedBackend:
    """Yields a fixed token script; records requests and whether each stream was closed."""

    name = "scripted"
    description = "scripted"
    ready = True

    def __init__(self, *scripts: list[TokenOut | EngineEnd], prompt_tokens: int = 3) -> None:
        self.scripts = list(scripts)
        self.requests: list[EngineRequest] = []
        self.closed = 0
        self.prompt_tokens = prompt_tokens

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def stream(self, request: EngineRequest) -> AsyncGenerator[TokenOut | EngineEnd, None]:
        script = self.scripts[len(self.requests) % len(self.scripts)]
        self.requests.append(request)
        try:
            for item in script:
                yield item
        finally:
            self.closed += 1

    async def tokenize(self, text: str) -> list[tuple[int, bytes]]:
        return [(i, w.encode()) for i, w in enumerate(text.split())]

    async def count_tokens(self, text: str) -> int:
        return self.prompt_tokens

    def token_upper_bound(self, text: str) -> int:
        return len(text)

    async def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return ""


def plan(max_new: int = 10, stop: tuple[str, ...] = (), **sampling: object) -> Plan:
    return Plan(prompt="p", max_new_tokens=max_new, sampling=Sampling(**sampling), stop=stop)  # type: ignore[arg-type]


async def steps_of(backend: ScriptedBackend, p: Plan) -> list[Step]:
    return [s async for s in generate_steps(backend, p)]


async def test_eos_is_the_final_special_token() -> None:
    backend = ScriptedBackend([tok("Hi"), tok("!"), EOS, EngineEnd("eos_token", 7)])
    steps = await steps_of(backend, plan())
    assert [s.index for s in steps] == [1, 2, 3]
    assert [s.final is None for s in steps] == [True, True, False]
    final = steps[-1].final
    assert final is not None
    assert steps[-1].token == EOS and steps[-1].delta == ""
    assert final.text == "Hi!"
    assert final.finish_reason == "eos_token"
    assert len(final.tokens) == 3
    assert final.input_length == 7
    assert backend.closed == 1


async def test_length_limit_ends_on_the_last_token() -> None:
    backend = ScriptedBackend([tok("a"), tok("b"), EngineEnd("length", 4)])
    steps = await steps_of(backend, plan(max_new=2))
    assert steps[-1].index == 2
    final = steps[-1].final
    assert final is not None
    assert (final.text, final.finish_reason, final.input_length) == ("ab", "length", 4)


async def test_stop_sequence_is_kept_and_the_engine_is_cancelled() -> None:
    script: list[TokenOut | EngineEnd] = [tok("Hello"), tok(" wor"), tok("ld. And"), tok(" more")]
    backend = ScriptedBackend([*script, EngineEnd("length", 1)], prompt_tokens=5)
    steps = await steps_of(backend, plan(stop=("world",)))
    final = steps[-1].final
    assert final is not None
    assert final.finish_reason == "stop_sequence"
    assert final.text == "Hello world"
    # the token completing the stop is the final one; its delta is cut after the match
    assert steps[-1].token.text == "ld. And"
    assert steps[-1].delta == "ld"
    assert "".join(s.delta for s in steps) == final.text
    assert len(final.tokens) == 3
    assert final.input_length == 5  # counted, since the engine never reported it
    assert backend.closed == 1


async def test_earliest_of_several_stops_wins() -> None:
    backend = ScriptedBackend([tok("x: 1, y: 2\n"), EngineEnd("length", 1)])
    final = await generate(backend, plan(stop=("\n", ",")))
    assert final.text == "x: 1,"


def test_stop_matcher_only_looks_at_new_text() -> None:
    matcher = StopMatcher(("ab",))
    assert matcher.find("xa", 1) is None
    assert matcher.find("xab", 1) == 3
    assert not StopMatcher(("",))
    assert StopMatcher(()).find("anything", 3) is None


def _naive_cut(text: str, stops: tuple[str, ...]) -> int | None:
    ends = [text.find(s) + len(s) for s in stops if s and s in text]
    return min(ends) if ends else None


@given(
    chunks=st.lists(st.text(alphabet="ab\n", max_size=4), max_size=12),
    stops=st.lists(st.text(alphabet="ab\n", min_size=1, max_size=3), min_size=1, max_size=3),
)
def test_stop_matcher_agrees_with_a_full_search(chunks: list[str], stops: list[str]) -> None:
    # feeding the text chunk by chunk finds the first match a search of the whole text finds
    matcher = StopMatcher(tuple(stops))
    text = ""
    found = None
    for chunk in chunks:
        text += chunk
        found = matcher.find(text, len(chunk))
        if found is not None:
            break
    assert found == _naive_cut(text, tuple(stops))


async def test_engine_without_end_report_is_an_incomplete_generation() -> None:
    backend = ScriptedBackend([tok("a")])
    with pytest.raises(Problem) as info:
        await generate(backend, plan())
    assert info.value.status == 500
    assert info.value.error_type == "incomplete_generation"


async def test_engine_end_without_closing_token_still_ends_with_a_final_step() -> None:
    backend = ScriptedBackend([tok("a"), EngineEnd("length", 1)])
    steps = await steps_of(backend, plan(max_new=5))
    assert steps[-1].final is not None
    assert steps[-1].token.special
    assert steps[-1].final.text == "a"


async def test_sampling_without_seed_gets_a_random_seed_greedy_gets_none() -> None:
    backend = ScriptedBackend([tok("a"), EngineEnd("length", 1)])
    greedy = await generate(backend, plan(max_new=1))
    sampled = await generate(backend, plan(max_new=1, do_sample=True))
    fixed = await generate(backend, plan(max_new=1, do_sample=True, seed=42))
    assert greedy.seed is None
    assert isinstance(sampled.seed, int)
    assert fixed.seed == 42
    assert [r.sampling.seed for r in backend.requests] == [None, sampled.seed, 42]


async def test_best_of_returns_the_highest_logprob_sum_first() -> None:
    low: list[TokenOut | EngineEnd] = [tok("low", -3.0), EOS, EngineEnd("eos_token", 1)]
    high: list[TokenOut | EngineEnd] = [tok("high", -0.1), EOS, EngineEnd("eos_token", 1)]
    backend = ScriptedBackend(low, high)
    gens = await generate_best_of(backend, plan(do_sample=True), 2)
    assert [g.text for g in gens] == ["high", "low"]
    assert gens[0].seed != gens[1].seed


async def test_best_of_failure_surfaces_the_problem() -> None:
    good: list[TokenOut | EngineEnd] = [tok("ok"), EOS, EngineEnd("eos_token", 1)]
    broken: list[TokenOut | EngineEnd] = [tok("x")]
    backend = ScriptedBackend(good, broken)
    with pytest.raises(Problem, match="Incomplete generation"):
        await generate_best_of(backend, plan(do_sample=True), 2)


async def test_closing_the_steps_early_closes_the_engine() -> None:
    backend = ScriptedBackend([tok("a"), tok("b"), tok("c"), EngineEnd("length", 1)])
    async with contextlib.aclosing(generate_steps(backend, plan())) as steps:
        async for _ in steps:
            break
    assert backend.closed == 1
