"""The simulated engine behind ``tgispy serve --backend sim``: scripted, deterministic, fast.

Text is split into word-like tokens (``" word"``, punctuation); token ids are a stable hash of
the piece, logprobs a stable function of the piece and its position. With zero latency nothing
sleeps, so the HTTP front can be load-tested at thousands of requests per second.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncGenerator
from functools import lru_cache
from typing import Final

from aiohttp import web

from tgispy.server._config import SimConfig
from tgispy.server._faults import dropping
from tgispy.server._types import EngineEnd, EngineRequest, TokenOut

__all__ = ["SimBackend", "sim_tokens"]

_PIECE: Final = re.compile(r"\s*[\w']+|\s*[^\w\s]|\s+")
_VOCAB: Final = 50_000
_EOS: Final = TokenOut(id=0, text="</s>", logprob=-0.05, special=True)
_MAX_REMEMBERED_PIECES: Final = 100_000
#: texts longer than this are tokenized on a worker thread
_OFF_LOOP_CHARS: Final = 65_536


def _piece_id(piece: str) -> int:
    # ids 0-9 are reserved for special tokens
    return 10 + zlib.crc32(piece.encode()) % (_VOCAB - 10)


@lru_cache(maxsize=1024)
def sim_tokens(text: str) -> tuple[TokenOut, ...]:
    """The simulator's tokens for ``text`` (cached: scripted texts repeat).

    Example:
        >>> [t.text for t in sim_tokens("Hello, world")]
        ['Hello', ',', ' world']
    """
    out = []
    for i, piece in enumerate(_PIECE.findall(text)):
        token_id = _piece_id(piece)
        logprob = -((token_id * 31 + i) % 997) / 500.0
        out.append(TokenOut(id=token_id, text=piece, logprob=logprob))
    return tuple(out)


def _count_pieces(text: str) -> int:
    # Not through sim_tokens: its cache would keep every prompt's tokens (1024 prompts of 2 MB
    # took gigabytes); only scripted texts, which repeat, are worth caching.
    return sum(1 for _ in _PIECE.finditer(text))


def _with_top(token: TokenOut, n: int) -> TokenOut:
    """``token`` with ``n`` made-up alternatives, the token itself the most likely."""
    lp = token.logprob or 0.0
    others = (
        TokenOut(10 + (token.id + k) % (_VOCAB - 10), f"{token.text}~{k}", lp - k)
        for k in range(1, n)
    )
    top = (token, *others)
    return TokenOut(token.id, token.text, token.logprob, False, top)


def _drop(request: web.Request | None) -> None:
    """Abort ``request``'s connection (a simulated drop); nothing when it is ``None``."""
    if request is None:
        return
    if request.transport is not None:
        request.transport.abort()
    raise ConnectionResetError("simulated dropped connection")


class SimBackend:
    """A fake engine with latency, capacity and scripted texts (faults: :mod:`._faults`).

    Example:
        >>> backend = SimBackend(SimConfig(texts=("Hi there.",)))
        >>> backend.name
        'sim'
    """

    name = "sim"

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.description = f"{config.model_id} (simulated)"
        self._ready = False
        self._healthy = True
        self._slots = asyncio.Semaphore(config.capacity)
        self._turn = 0
        self._pieces: dict[int, str] = {}

    @property
    def ready(self) -> bool:
        """Whether the backend is started and marked healthy."""
        return self._ready and self._healthy

    def set_healthy(self, healthy: bool) -> None:
        """Make ``/health`` answer 503 (``False``) or 200 (``True``), to test health checks."""
        self._healthy = healthy

    async def start(self) -> None:
        """Nothing to load."""
        self._ready = True

    async def aclose(self) -> None:
        """Nothing to free."""
        self._ready = False

    def _prompt_text(self, prompt: str | tuple[int, ...]) -> str:
        if isinstance(prompt, str):
            return prompt
        return "".join(self._pieces.get(i, "") for i in prompt)

    def _script(self, prompt: str | tuple[int, ...]) -> tuple[TokenOut, ...]:
        cfg = self.config
        # Answers that vary with the prompt bypass sim_tokens' cache (see _count_pieces).
        if cfg.responder is not None:
            return sim_tokens.__wrapped__(cfg.responder(self._prompt_text(prompt)))
        if cfg.echo:
            return sim_tokens.__wrapped__(self._prompt_text(prompt))
        text = cfg.texts[self._turn % len(cfg.texts)]
        self._turn += 1
        return sim_tokens(text)

    async def stream(self, request: EngineRequest) -> AsyncGenerator[TokenOut | EngineEnd, None]:
        """Yield the scripted tokens (then EOS if the script ends first) and the end report."""
        cfg = self.config
        script = self._script(request.prompt)
        prompt_tokens = (
            len(request.prompt)
            if isinstance(request.prompt, tuple)
            else _count_pieces(request.prompt)
        )
        limit = request.max_new_tokens
        # A stream that drew a "drop" fault loses its connection half-way (see _faults).
        dropped = dropping()
        drop_at = max(1, limit // 2) if dropped is not None else limit + 2
        async with self._slots:
            if cfg.prefill_latency_s:
                await asyncio.sleep(cfg.prefill_latency_s)
            delay = cfg.token_latency_s
            top_n = request.top_n_tokens
            for i, scripted in enumerate(script[:limit]):
                if delay:
                    await asyncio.sleep(delay)
                if i + 1 >= drop_at:
                    _drop(dropped)
                yield _with_top(scripted, top_n) if top_n else scripted
                if i + 1 >= limit:
                    _drop(dropped)
                    yield EngineEnd("length", prompt_tokens)
                    return
            if delay:
                await asyncio.sleep(delay)
            _drop(dropped)
            yield _EOS
            yield EngineEnd("eos_token", prompt_tokens)

    def _tokenize(self, text: str) -> list[tuple[int, bytes]]:
        # One (id, bytes) pair per distinct piece, shared by its repeats: text repeats its words,
        # and a pair per token made a 2 MB prompt cost ~80 MB of small objects.
        seen: dict[str, tuple[int, bytes]] = {}
        out: list[tuple[int, bytes]] = []
        for piece in _PIECE.findall(text):
            pair = seen.get(piece)
            if pair is None:
                pair = seen[piece] = (_piece_id(piece), piece.encode())
            out.append(pair)
        if len(self._pieces) < _MAX_REMEMBERED_PIECES:
            self._pieces.update((token_id, piece) for piece, (token_id, _) in seen.items())
        return out

    async def tokenize(self, text: str) -> list[tuple[int, bytes]]:
        """The simulator's tokens of ``text`` (remembered so truncated prompts can be echoed).

        Long texts are split on a worker thread, so that the event loop keeps serving.
        """
        if len(text) > _OFF_LOOP_CHARS:
            return await asyncio.to_thread(self._tokenize, text)
        return self._tokenize(text)

    async def count_tokens(self, text: str) -> int:
        """Number of simulator tokens in ``text`` (counted on a worker thread when long)."""
        if len(text) > _OFF_LOOP_CHARS:
            return await asyncio.to_thread(_count_pieces, text)
        return _count_pieces(text)

    def token_upper_bound(self, text: str) -> int:
        """Characters bound the simulator's token count."""
        return len(text)

    async def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """A minimal template: each message's content on its own line."""
        return "\n".join(m["content"] for m in messages)
