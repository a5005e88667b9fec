"""The llama.cpp engine, through xllamacpp's embedding of llama.cpp's own server.

``xllamacpp.Server`` runs llama.cpp's server context (continuous batching over ``parallel``
slots) on its own thread. ``handle_completions(request, callback)`` blocks its caller while it
streams chunks to ``callback``; returning ``True`` from the callback cancels the request. So each
generation runs ``handle_completions`` on a worker thread and hands chunks to the event loop, and
many generations proceed at once in llama.cpp's slots.

xllamacpp also starts llama.cpp's HTTP server; we bind it to a private Unix socket and use it
only for tokenization and chat templates (which its Python API does not expose).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import aiohttp

from tgispy.server import _problems as problems
from tgispy.server._config import ServerConfig
from tgispy.server._threads import auto_threads
from tgispy.server._types import EngineEnd, EngineRequest, TokenOut

__all__ = ["LlamaBackend"]

logger = logging.getLogger(__name__)

_INSTALL_HINT: Final = "pip install 'tgispy[server]'"
# llama.cpp's seed is 32-bit and 0xFFFFFFFF means "random": fold TGI's u64 seeds below it.
_SEED_MODULUS: Final = 0xFFFFFFFF
# TGI's warper order: temperature, top-k, top-p, typical-p (after the penalties).
_SAMPLERS: Final = ["penalties", "temperature", "top_k", "top_p", "typ_p"]
_DONE: Final = object()
#: llama.cpp answers larger than this are decoded on a worker thread
_OFF_LOOP_BYTES: Final = 65_536
_OFF_LOOP_TOKENS: Final = 16_384


def _import_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:
        raise ImportError(
            f"the llama backend of `tgispy serve` needs xllamacpp: {_INSTALL_HINT}"
        ) from exc
    return xllamacpp


def _pieces(tokens: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
    """llama.cpp's ``/tokenize`` answer as ``(id, bytes)`` pairs."""
    out: list[tuple[int, bytes]] = []
    for item in tokens:
        piece = item["piece"]
        raw = piece.encode() if isinstance(piece, str) else bytes(piece)
        out.append((int(item["id"]), raw))
    return out


class _Call:
    """One in-flight ``handle_completions``: the channel from its worker thread to the loop."""

    __slots__ = ("cancelled", "loop", "queue")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = False

    def on_chunk(self, chunk: Any) -> bool:
        """xllamacpp's callback (worker thread): forward the chunk; ``True`` cancels."""
        if self.cancelled:
            return True
        self.loop.call_soon_threadsafe(self.queue.put_nowait, chunk)
        return False


class LlamaBackend:
    """llama.cpp via xllamacpp: continuous batching over ``config.parallel`` slots.

    Example:
        >>> backend = LlamaBackend(ServerConfig())  # doctest: +SKIP
        >>> await backend.start()  # doctest: +SKIP
    """

    name = "llama"

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._model_path = config.model_path()
        self.description = str(self._model_path)
        self._server: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._socket_dir: str | None = None
        self._calls: set[_Call] = set()
        self._special_text: dict[int, str] = {}
        self._ready = False

    @property
    def ready(self) -> bool:
        """Whether the model is loaded."""
        return self._ready

    # --- lifecycle ---------------------------------------------------------------------

    def _params(self, xllamacpp: Any, socket_path: str) -> Any:
        cfg = self._config
        params = xllamacpp.CommonParams()
        params.model.path = str(self._model_path)
        params.n_parallel = cfg.parallel
        # llama.cpp splits n_ctx evenly between the slots; each slot gets ctx_size.
        params.n_ctx = cfg.ctx_size * cfg.parallel
        # No --threads: usable cores - 1, not llama.cpp's one per core (measured in _threads.py).
        threads = cfg.threads if cfg.threads is not None else auto_threads()
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.hostnames = [socket_path]
        params.port = 0
        params.n_threads_http = 2
        params.ui = False
        params.cont_batching = True
        params.verbosity = 3 if logger.isEnabledFor(logging.DEBUG) else -1
        return params

    async def start(self) -> None:
        """Load the model on a worker thread (seconds) and read its special tokens."""
        xllamacpp = _import_xllamacpp()
        loop = asyncio.get_running_loop()
        # One worker per slot keeps every slot busy; the extra ones absorb requests that were
        # cancelled while queued and still have to see their first chunk.
        self._executor = ThreadPoolExecutor(
            max_workers=self._config.parallel * 2 + 2, thread_name_prefix="tgispy-llama"
        )
        self._socket_dir = tempfile.mkdtemp(prefix="tgispy-llama-")
        socket_path = str(Path(self._socket_dir) / "llama.sock")
        params = self._params(xllamacpp, socket_path)
        logger.info("loading %s", self._model_path)
        try:
            self._server = await loop.run_in_executor(self._executor, xllamacpp.Server, params)
        except Exception as exc:
            await self.aclose()
            raise RuntimeError(f"llama.cpp could not load {self._model_path}: {exc}") from exc
        self._session = aiohttp.ClientSession(
            base_url="http://llama.cpp", connector=aiohttp.UnixConnector(path=socket_path)
        )
        props = await self._post_json("/props", None)
        eos_text = str(props.get("eos_token") or "")
        if eos_text:
            for token_id, _ in await self._tokenize(eos_text, parse_special=True):
                self._special_text[token_id] = eos_text
        self._ready = True
        logger.info("model loaded: %s", self._model_path)

    async def aclose(self) -> None:
        """Cancel in-flight generations, stop llama.cpp and free the model."""
        self._ready = False
        for call in list(self._calls):
            call.cancelled = True
        if self._session is not None:
            await self._session.close()
            self._session = None
        loop = asyncio.get_running_loop()
        server, self._server = self._server, None
        executor, self._executor = self._executor, None
        if executor is not None:
            # Workers return at their next chunk now that every call is cancelled.
            await loop.run_in_executor(None, executor.shutdown, True)
        if server is not None:
            # Destroying the server joins llama.cpp's loop thread: do it off the event loop.
            holder = [server]
            del server
            await loop.run_in_executor(None, holder.clear)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    # --- tokenizer and template (llama.cpp's HTTP API on the private socket) ----------

    async def _post_json(self, path: str, body: Any) -> Any:
        if self._session is None:
            raise problems.unavailable("the model is not loaded")
        if body is None:
            async with self._session.get(path) as resp:
                resp.raise_for_status()
                return await resp.json()
        async with self._session.post(path, json=body) as resp:
            raw = await resp.read()
            # /tokenize of a 2 MB prompt answers ~30 MB of JSON: decode it off the event loop.
            data = (
                await asyncio.to_thread(json.loads, raw)
                if len(raw) > _OFF_LOOP_BYTES
                else (json.loads(raw))
            )
            if resp.status != 200:
                message = data.get("error", {}).get("message", str(data))
                raise ValueError(message)
            return data

    async def _tokenize(self, text: str, *, parse_special: bool) -> list[tuple[int, bytes]]:
        data = await self._post_json(
            "/tokenize",
            {
                "content": text,
                "add_special": True,
                "parse_special": parse_special,
                "with_pieces": True,
            },
        )
        tokens = data["tokens"]
        if len(tokens) > _OFF_LOOP_TOKENS:
            return await asyncio.to_thread(_pieces, tokens)
        return _pieces(tokens)

    async def tokenize(self, text: str) -> list[tuple[int, bytes]]:
        """Tokenize a prompt as llama.cpp's completion endpoint does (special tokens parsed)."""
        return await self._tokenize(text, parse_special=True)

    async def count_tokens(self, text: str) -> int:
        """Prompt tokens of ``text``."""
        return len(await self.tokenize(text))

    def token_upper_bound(self, text: str) -> int:
        """Byte-level BPE makes at most one token per byte (+2 for BOS/prefix tokens)."""
        return len(text.encode()) + 2

    async def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """Render ``messages`` with the model's own chat template (from the GGUF)."""
        try:
            data = await self._post_json("/apply-template", {"messages": messages})
        except ValueError as exc:
            raise problems.template_error(str(exc)) from exc
        return str(data["prompt"])

    # --- generation --------------------------------------------------------------------

    def _payload(self, request: EngineRequest) -> dict[str, Any]:
        s = request.sampling
        payload: dict[str, Any] = {
            "prompt": request.prompt if isinstance(request.prompt, str) else list(request.prompt),
            "max_tokens": request.max_new_tokens,
            "stream": True,
            # logprobs give us each token's id, bytes and logprob (and the top-n alternatives)
            "n_probs": max(1, request.top_n_tokens),
            "temperature": s.temperature if s.do_sample else 0.0,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "typical_p": s.typical_p,
            "min_p": 0.0,
            "repeat_penalty": s.repetition_penalty,
            "repeat_last_n": self._config.ctx_size,  # the whole context, as TGI
            "frequency_penalty": s.frequency_penalty,
            "presence_penalty": 0.0,
            "samplers": _SAMPLERS,
            "seed": (s.seed or 0) % _SEED_MODULUS,
            "cache_prompt": self._config.prompt_cache,
        }
        if request.grammar is not None:
            if request.grammar.kind == "json_schema":
                payload["json_schema"] = request.grammar.value
            else:
                payload["grammar"] = request.grammar.value
        return payload

    def _run(self, call: _Call, payload: dict[str, Any]) -> None:
        """Worker thread: run one request through llama.cpp, forwarding chunks to the loop."""
        try:
            if not call.cancelled and self._server is not None:
                self._server.handle_completions(payload, call.on_chunk)
        except BaseException as exc:  # handed to the loop, raised there
            call.loop.call_soon_threadsafe(call.queue.put_nowait, exc)
        finally:
            call.loop.call_soon_threadsafe(call.queue.put_nowait, _DONE)

    def _alternative(self, alt: dict[str, Any]) -> TokenOut:
        raw = bytes(alt.get("bytes") or b"")
        token_id = int(alt["id"])
        text = raw.decode(errors="replace") if raw else self._special_text.get(token_id, "")
        return TokenOut(id=token_id, text=text, logprob=float(alt["logprob"]), special=not raw)

    def _token(
        self, entry: dict[str, Any], decoder: codecs.IncrementalDecoder, with_top: bool
    ) -> TokenOut:
        raw = bytes(entry.get("bytes") or b"")
        token_id = int(entry["id"])
        # llama.cpp renders control tokens (EOS, ...) as empty bytes; TGI marks them special.
        special = not raw
        # The incremental decoder holds back a split UTF-8 character until its last byte
        # arrives, as TGI's detokenizer does (the token's text is "" meanwhile).
        text = self._special_text.get(token_id, "") if special else decoder.decode(raw)
        top: tuple[TokenOut, ...] = ()
        if with_top:
            top = tuple(self._alternative(alt) for alt in entry.get("top_logprobs") or ())
        return TokenOut(token_id, text, float(entry["logprob"]), special, top)

    async def stream(self, request: EngineRequest) -> AsyncGenerator[TokenOut | EngineEnd, None]:
        """Generate on llama.cpp, yielding tokens as its slots produce them."""
        if self._server is None or self._executor is None:
            raise problems.unavailable("the model is not loaded")
        loop = asyncio.get_running_loop()
        call = _Call(loop)
        self._calls.add(call)
        payload = self._payload(request)
        wants_top = request.top_n_tokens > 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        loop.run_in_executor(self._executor, self._run, call, payload)
        try:
            while True:
                chunk = await call.queue.get()
                if chunk is _DONE:
                    raise problems.incomplete()
                if isinstance(chunk, BaseException):
                    raise problems.generation(str(chunk)) from chunk
                if "error" in chunk:
                    error = chunk["error"]
                    message = error.get("message", str(error)) if isinstance(error, dict) else error
                    raise problems.generation(str(message))
                choice = chunk["choices"][0]
                logprobs = choice.get("logprobs")
                if logprobs:
                    for entry in logprobs.get("content") or ():
                        yield self._token(entry, decoder, wants_top)
                reason = choice.get("finish_reason")
                if reason:
                    usage = chunk.get("usage") or {}
                    yield EngineEnd(
                        "length" if reason == "length" else "eos_token",
                        int(usage.get("prompt_tokens", 0)),
                    )
                    return
        finally:
            call.cancelled = True
            self._calls.discard(call)
