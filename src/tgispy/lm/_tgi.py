"""``HFClientTGI``: DSPy 2.4's TGI client, rebuilt on tgispy's async core.

The constructor and ``_generate`` result are the seed's; underneath, requests go through the
shared async client (keep-alive pools, ``/info``-aware validation, routing across replicas, bounded
retries), with a two-tier cache in front.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any

from tgispy._sync import iterate_sync, run_sync
from tgispy.errors import ConfigError
from tgispy.lm._base import LM, Completion, Generation, render_messages
from tgispy.tgi._client import TGIClient
from tgispy.tgi._endpoints import Credentials, PortArg, UrlArg, replica_urls, split_userinfo
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout
from tgispy.tgi._request import (
    build_chat_request,
    build_generate_request,
    generation_parameters,
)
from tgispy.tgi._response import (
    ChatChunk,
    ChatResponse,
    GenerateResponse,
    StreamEvent,
    parse_chat_chunk,
    parse_chat_response,
    parse_generate_response,
    parse_stream_event,
    usage_from_headers,
)
from tgispy.tgi._transport import AsyncTransport, HTTPResponse

__all__ = ["HFClientTGI"]

_HTTP_REQUEST_KEYS = frozenset({"headers", "timeout", "auth", "verify"})
_MODES = ("text", "chat")


class HFClientTGI(LM):
    """A client for HuggingFace text-generation-inference servers (one or many replicas).

    Args:
        model: the HuggingFace model id served by TGI (used in cache keys and history).
        port: one port (``8080``), a list of ports (``[8080, 8081]``) -- one replica each -- or
            ``None`` when ``url`` already holds full base URLs.
        url: base URL (``"http://localhost"``), or a list of full base URLs (https and path
            prefixes allowed, e.g. HF Inference Endpoints).
        http_request_kwargs: ``headers``, ``timeout`` (seconds or :class:`~tgispy.tgi.Timeout`),
            ``auth`` (a bearer token string or ``(user, password)``) and ``verify`` (TLS).
        cache: ``True`` (memory + disk, shared), ``False``, or an ``LMCache``.
        mode: ``"text"`` (``/generate``) or ``"chat"`` (TGI's Messages API).
        retry: a :class:`~tgispy.tgi.RetryPolicy`; routing: a :class:`~tgispy.tgi.RoutingPolicy`.
        history_size: how many calls :attr:`history` keeps (``None``: unbounded).
        transport: the HTTP transport (default aiohttp); :class:`tgispy.testing.MockTransport`
            answers in-process for tests.
        **kwargs: default generation parameters (DSPy 2.4 defaults: ``temperature=0.01,
            max_tokens=75, top_p=0.97, n=1, stop=["\\n", "\\n\\n"]``).

    Example:
        >>> import tgispy as dspy
        >>> tgi = dspy.HFClientTGI(model="HuggingFaceTB/SmolLM2-135M-Instruct", port=8080,
        ...                        url="http://localhost")
        >>> tgi.kwargs["max_tokens"]
        75
    """

    provider = "hf"

    def __init__(
        self,
        model: str,
        port: PortArg,
        url: UrlArg = "http://localhost",
        http_request_kwargs: Mapping[str, Any] | None = None,
        *,
        cache: Any = True,
        mode: str = "text",
        retry: RetryPolicy | None = None,
        routing: RoutingPolicy | None = None,
        history_size: int | None = 1000,
        transport: AsyncTransport | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError("model must be the model id served by TGI, e.g. model='gpt2'")
        if mode not in _MODES:
            raise ConfigError(f"mode must be one of {_MODES}, got {mode!r}")
        _check_types(retry, routing, history_size, http_request_kwargs, transport)
        defaults: dict[str, Any] = {
            "temperature": 0.01,
            "max_tokens": 75,
            "top_p": 0.97,
            "n": 1,
            "stop": ["\n", "\n\n"],
            **kwargs,
        }
        super().__init__(model, history_size=history_size)
        self.kwargs = defaults
        self.url = url
        self.ports = list(port) if isinstance(port, (list, tuple)) else [port]
        self.mode = mode
        self.headers = {"Content-Type": "application/json"}
        self.http_request_kwargs = dict(http_request_kwargs or {})
        self._client = fleet_client(
            replica_urls(url, port),
            self.http_request_kwargs,
            retry=retry,
            routing=routing,
            transport=transport,
        )
        self.urls = self._client.urls
        # Catch bad generation defaults now, before any network call.
        generation_parameters(defaults)
        self._cache = _resolve_cache(cache)

    # ---- the async core ---------------------------------------------------------------------
    async def acomplete(self, prompt: str, **kwargs: Any) -> Generation:
        """Generate completions for ``prompt`` (``n`` of them via TGI's ``best_of``)."""
        if not isinstance(prompt, str):
            raise ConfigError(f"prompt must be a string, got {type(prompt).__name__}")
        started = self._client.clock()
        merged = {**self.kwargs, **kwargs}
        use_cache = merged.pop("cache", True) and self._cache is not None
        if self.mode == "chat":
            return await self._acomplete_chat(prompt, merged, use_cache)
        route = _pop_route_key(merged)  # issue 18: routing key, never sent nor cached
        known = self._client.cached_info()
        body = build_generate_request(prompt, merged, info=known)
        key = _key(self.model, "/generate", body) if use_cache else None
        if key is not None:
            hit = _from_cache(prompt, self._cache.get(key))
            if hit is not None:
                return hit
        info = await self._client.server_info(started_at=started)
        if info is not None and known is None:
            body = build_generate_request(prompt, merged, info=info)  # re-validate with limits
        result, meta = await self._client.post(
            "/generate", body, _parse_generate, started_at=started, route_key=route
        )
        response, usage = result
        generation = Generation(
            prompt=prompt,
            completions=tuple(
                Completion(s.text, s.finish_reason, s.generated_tokens, s.logprob)
                for s in response.sequences
            ),
            usage=usage,
            replica=meta.replica,
        )
        if key is not None:
            self._cache.set(key, _to_cache(generation))
        return generation

    async def _acomplete_chat(
        self, prompt: str, merged: dict[str, Any], use_cache: bool
    ) -> Generation:
        n = int(merged.pop("n", 1) or 1)
        messages = [{"role": "user", "content": prompt}]
        generation = await self._achat_many(messages, merged, use_cache, n)
        return Generation(
            prompt=prompt,
            completions=generation.completions,
            usage=generation.usage,
            replica=generation.replica,
            cached=generation.cached,
        )

    async def _achat_many(
        self,
        messages: Sequence[Mapping[str, Any]],
        merged: Mapping[str, Any],
        use_cache: bool,
        n: int,
    ) -> Generation:
        results = await asyncio.gather(
            *(self._achat_one(messages, merged, use_cache, index=i) for i in range(n))
        )
        usage = _sum_usage([g.usage for g in results])
        return Generation(
            prompt="",
            completions=tuple(c for g in results for c in g.completions),
            usage=usage,
            replica=results[0].replica if results else None,
            cached=all(g.cached for g in results),
        )

    async def _achat_one(
        self,
        messages: Sequence[Mapping[str, Any]],
        merged: Mapping[str, Any],
        use_cache: bool,
        *,
        index: int = 0,
    ) -> Generation:
        started = self._client.clock()
        info = await self._client.server_info(started_at=started)
        merged = dict(merged)
        route = _pop_route_key(merged)  # issue 18: routing key, never sent nor cached
        # model=None sends "tgi": TGI takes any other model name for a LoRA adapter id.
        body = build_chat_request(messages, merged, model=None, info=info)
        # n chat samples are n requests with one body: the index keeps their cache entries apart.
        key = _key(self.model, f"/v1/chat/completions#{index}", body) if use_cache else None
        if key is not None:
            hit = _from_cache("", self._cache.get(key))
            if hit is not None:
                return hit
        chat, meta = await self._client.post(
            "/v1/chat/completions", body, _parse_chat, started_at=started, route_key=route
        )
        generation = Generation(
            prompt="",
            completions=(Completion(chat.content or "", chat.finish_reason),),
            usage=chat.usage,
            replica=meta.replica,
        )
        if key is not None:
            self._cache.set(key, _to_cache(generation))
        return generation

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """Call TGI's Messages API (``/v1/chat/completions``).

        Returns ``{"messages": messages, "choices": [{"text": ..., "finish_reason": ...}],
        "usage": {...}}`` and records the call in :attr:`history`. ``n`` choices are ``n``
        requests (TGI's chat API returns one).
        """
        merged = {**self.kwargs, **kwargs}
        n = int(merged.pop("n", 1) or 1)
        use_cache = bool(merged.pop("cache", True)) and self._cache is not None
        started = time.perf_counter()
        if n == 1:
            generation = await self._achat_one(list(messages), merged, use_cache)
        else:
            generation = await self._achat_many(list(messages), merged, use_cache, n)
        response = {
            "messages": list(messages),
            "choices": [
                {"text": c.text, "finish_reason": c.finish_reason} for c in generation.completions
            ],
            "usage": generation.usage,
        }
        self._record(
            render_messages(messages),
            response,
            kwargs=merged,
            raw_kwargs=kwargs,
            usage=generation.usage,
            started=started,
            replica=generation.replica,
            cached=generation.cached,
            finish_reasons=[c.finish_reason for c in generation.completions],
            messages=messages,
        )
        return response

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """Sync face of :meth:`achat`."""
        return run_sync(self.achat(messages, **kwargs))

    async def achat_stream(
        self, messages: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> AsyncGenerator[str, None]:
        """Stream a Messages API answer piece by piece (recorded in history, never cached).

        Mid-stream error events raise typed errors; the request is retried on another replica
        only before the first chunk.
        """
        merged = {**self.kwargs, **kwargs}
        merged.pop("n", None)
        merged.pop("cache", None)
        route = _pop_route_key(merged)  # issue 18: routing key, never sent
        began = self._client.clock()
        info = await self._client.server_info(started_at=began)
        body = build_chat_request(list(messages), merged, model=None, info=info, stream=True)
        started = time.perf_counter()
        pieces: list[str] = []
        usage: dict[str, int] | None = None
        finish_reason: str | None = None
        replica: str | None = None
        async for served_by, chunk in self._client.stream(
            "/v1/chat/completions",
            body,
            _parse_chunk_with_replica,
            last=lambda t: t[1] is None,
            started_at=began,
            route_key=route,
        ):
            replica = served_by
            if chunk is None:  # [DONE]
                break
            usage = chunk.usage or usage
            finish_reason = chunk.finish_reason or finish_reason
            if chunk.content:
                pieces.append(chunk.content)
                yield chunk.content
        text = "".join(pieces)
        self._record(
            render_messages(messages),
            {
                "messages": list(messages),
                "choices": [{"text": text, "finish_reason": finish_reason}],
                "usage": usage,
            },
            kwargs=merged,
            raw_kwargs=kwargs,
            usage=usage,
            started=started,
            replica=replica,
            cached=False,
            finish_reasons=[finish_reason],
            messages=messages,
        )

    def chat_stream(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Iterator[str]:
        """Sync face of :meth:`achat_stream`."""
        return iterate_sync(self.achat_stream(messages, **kwargs))

    async def astream(self, prompt: str, **kwargs: Any) -> AsyncGenerator[str, None]:
        """Stream the generated text of ``/generate_stream`` piece by piece.

        Mid-stream server errors raise typed errors; the request is retried on another replica
        only before the first token. Streams are recorded in history but never cached.
        """
        merged = {**self.kwargs, **kwargs}
        merged.pop("cache", None)
        route = _pop_route_key(merged)  # issue 18: routing key, never sent
        began = self._client.clock()
        info = await self._client.server_info(started_at=began)
        body = build_generate_request(prompt, merged, info=info, stream=True)
        started = time.perf_counter()
        pieces: list[str] = []
        async for replica, event in self._client.stream(
            "/generate_stream",
            body,
            _parse_stream_with_replica,
            last=lambda t: t[1].is_final,
            started_at=began,
            route_key=route,
        ):
            if event.is_final:
                details = event.details
                text = event.generated_text or ""
                self._record(
                    prompt,
                    {"prompt": prompt, "choices": [{"text": text}]},
                    kwargs=merged,
                    raw_kwargs=kwargs,
                    usage=_usage_from_details(details),
                    started=started,
                    replica=replica,
                    cached=False,
                    finish_reasons=[details.finish_reason if details else None],
                )
                rest = _stream_remainder("".join(pieces), text, event)
                if rest:
                    yield rest
                return
            if event.token is not None and not event.token.special:
                pieces.append(event.token.text)
                yield event.token.text

    def stream(self, prompt: str, **kwargs: Any) -> Iterator[str]:
        """Sync face of :meth:`astream`: iterate text pieces as they arrive."""
        return iterate_sync(self.astream(prompt, **kwargs))

    async def supports_grammar(self) -> bool:
        """Whether the server takes ``grammar`` / ``response_format`` (TGI >= 1.4.1, per ``/info``).

        ``True`` when ``/info`` is unavailable: the server then judges the request itself.
        Typed signatures use this to choose between constrained decoding and text parsing.
        """
        info = await self._client.server_info()
        return info is None or info.supports_grammar

    # ---- fleet ------------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99, and
        with ``RoutingPolicy(strategy="prefix")`` the requests served at their prefix's home
        replica (``prefix_hits``) or spilled to another (``prefix_spills``)."""
        return self._client.stats()

    def __deepcopy__(self, memo: dict[int, Any]) -> HFClientTGI:
        # An LM is a shared resource (pools, replica health); programs copy references to it.
        return self

    def __repr__(self) -> str:
        urls = list(self.urls)
        return f"HFClientTGI(model={self.model!r}, replicas={urls!r}, mode={self.mode!r})"


# ---- pure helpers ------------------------------------------------------------------------------
# -- issue 18 (routing key): begin --
def _pop_route_key(merged: dict[str, Any]) -> str | None:
    """Take ``route_key`` (a session or user id pinning the call to one replica under
    ``RoutingPolicy(strategy="prefix")``) out of the call's kwargs: it is never sent nor cached."""
    route = merged.pop("route_key", None)
    if route is not None and not isinstance(route, str):
        raise ConfigError(f"route_key must be a string such as 'user-42', got {route!r}")
    return route


# -- issue 18 (routing key): end --
def _parse_generate(
    resp: HTTPResponse, replica: str
) -> tuple[GenerateResponse, dict[str, int] | None]:
    return parse_generate_response(resp.body), usage_from_headers(resp.headers)


def _parse_stream_with_replica(data: str, replica: str) -> tuple[str, StreamEvent]:
    return replica, parse_stream_event(data, replica=replica)


def _parse_chunk_with_replica(data: str, replica: str) -> tuple[str, ChatChunk | None]:
    return replica, parse_chat_chunk(data, replica=replica)


def _parse_chat(resp: HTTPResponse, replica: str) -> ChatResponse:
    return parse_chat_response(resp.body)


def _key(model: str, endpoint: str, body: Mapping[str, Any]) -> str:
    from tgispy.cache._keys import request_key  # not at import: the cache loads on first use

    return request_key(model, endpoint, body)


def _to_cache(generation: Generation) -> dict[str, Any]:
    return {
        "completions": [
            {
                "text": c.text,
                "finish_reason": c.finish_reason,
                "generated_tokens": c.generated_tokens,
                "logprob": c.logprob,
            }
            for c in generation.completions
        ],
        "usage": generation.usage,
    }


def _from_cache(prompt: str, value: Any) -> Generation | None:
    """A cached generation, or ``None`` (a miss) when absent or not exactly the shape we store.

    An entry hand-edited or written by another version must never be served: a wrong shape is a
    miss, and the fresh answer overwrites it.
    """
    if not isinstance(value, dict) or set(value) - {"completions", "usage"}:
        return None
    raw = value.get("completions")
    usage = value.get("usage")
    if not isinstance(raw, list) or not raw or not _usage_shape(usage):
        return None
    completions = []
    for c in raw:
        if not isinstance(c, dict) or set(c) - _COMPLETION_FIELDS or not _completion_shape(c):
            return None
        completions.append(Completion(**c))
    return Generation(
        prompt=prompt, completions=tuple(completions), usage=usage, replica=None, cached=True
    )


_COMPLETION_FIELDS = frozenset({"text", "finish_reason", "generated_tokens", "logprob"})


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _completion_shape(c: Mapping[str, Any]) -> bool:
    tokens, logprob, reason = c.get("generated_tokens"), c.get("logprob"), c.get("finish_reason")
    return (
        isinstance(c.get("text"), str)
        and (reason is None or isinstance(reason, str))
        and (tokens is None or _is_int(tokens))
        and (
            logprob is None or (isinstance(logprob, (int, float)) and not isinstance(logprob, bool))
        )
    )


def _usage_shape(usage: object) -> bool:
    return usage is None or (
        isinstance(usage, dict) and all(isinstance(k, str) and _is_int(v) for k, v in usage.items())
    )


def _stream_remainder(streamed: str, final_text: str, event: StreamEvent) -> str:
    """What the final SSE event adds to the pieces already streamed.

    TGI's final event carries a token of its own (the last one, when generation ends on length
    or a stop sequence) besides ``generated_text``. What is yielded in total must equal the
    non-streamed text, so the remainder is taken from ``generated_text`` where it extends the
    streamed pieces, else the final token's own text.
    """
    if final_text.startswith(streamed):
        return final_text[len(streamed) :]
    token = event.token
    return token.text if token is not None and not token.special else ""


def _sum_usage(usages: Sequence[dict[str, int] | None]) -> dict[str, int] | None:
    known = [u for u in usages if u]
    if not known:
        return None
    keys = {k for u in known for k in u}
    return {k: sum(u.get(k, 0) for u in known) for k in sorted(keys)}


def _usage_from_details(details: Any) -> dict[str, int] | None:
    if details is None or details.generated_tokens is None:
        return None
    usage = {"completion_tokens": int(details.generated_tokens)}
    if details.input_length is not None:
        usage["prompt_tokens"] = int(details.input_length)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def _resolve_cache(cache: Any) -> Any:
    if cache is False or cache is None:
        return None
    if cache is True:
        from tgispy.cache import LMCache

        return LMCache.default()
    if hasattr(cache, "get") and hasattr(cache, "set"):
        return cache
    raise ConfigError("cache must be True, False or an LMCache instance")


def _check_types(
    retry: object,
    routing: object,
    history_size: object,
    http_request_kwargs: object,
    transport: object,
) -> None:
    """Constructor arguments of the wrong kind, caught with an error that names the fix."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigError(
            f"retry must be a tgispy.tgi.RetryPolicy, got {retry!r}; "
            "e.g. retry=RetryPolicy(max_attempts=3)"
        )
    if routing is not None and not isinstance(routing, RoutingPolicy):
        raise ConfigError(
            f"routing must be a tgispy.tgi.RoutingPolicy, got {routing!r}; "
            "e.g. routing=RoutingPolicy(strategy='p2c')"
        )
    if history_size is not None and (
        isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < 0
    ):
        raise ConfigError(
            f"history_size must be an int >= 0 or None (unbounded), got {history_size!r}"
        )
    if http_request_kwargs is not None and not isinstance(http_request_kwargs, Mapping):
        raise ConfigError(
            "http_request_kwargs must be a dict such as {'headers': {...}, 'timeout': 30}, "
            f"got {type(http_request_kwargs).__name__}"
        )
    if transport is not None and not isinstance(transport, AsyncTransport):
        raise ConfigError(
            "transport must implement tgispy.tgi.AsyncTransport (send and stream), e.g. "
            f"tgispy.testing.MockTransport(handler); got {type(transport).__name__}"
        )


def _headers(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            "http_request_kwargs['headers'] must be a dict of header names to values, "
            f"got {type(raw).__name__}"
        )
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, (str, int, float)):
            raise ConfigError(
                f"header {name!r} must map a string name to a string value "
                f"(got a {type(value).__name__})"
            )
        text = str(value)
        if any(c in name or c in text for c in "\r\n\0") or not name.strip():
            # the value is not echoed: it may be a credential
            raise ConfigError(
                f"header {name!r} has an empty name or a CR, LF or NUL in its name or value; "
                "remove the line breaks"
            )
        headers[name] = text
    return headers


def _seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def fleet_client(
    urls: Sequence[str],
    options: Mapping[str, Any],
    *,
    retry: RetryPolicy | None = None,
    routing: RoutingPolicy | None = None,
    transport: AsyncTransport | None = None,
    hf_token: bool = True,
    health_path: str = "/health",
) -> TGIClient:
    """The fleet client for replica ``urls`` and ``http_request_kwargs``-style ``options``.

    URL userinfo becomes Basic auth (and a secret to scrub); a number ``timeout`` also bounds
    the whole call (the retry policy's deadline, unless one is set). ``hf_token=False`` keeps
    ``HF_TOKEN`` away from servers that are not HuggingFace's (vLLM, Ollama, any OpenAI-compatible
    API): only HTTPS TGI endpoints get it. ``health_path`` is the route that probes an ejected
    replica (Ollama: ``/``).
    """
    clean, credentials = split_userinfo(urls)
    headers, verify, timeout, deadline = _http_options(
        options, clean, credentials, hf_token=hf_token
    )
    if deadline is not None and (retry is None or retry.deadline is None):
        retry = dataclasses.replace(retry or RetryPolicy(), deadline=deadline)
    return TGIClient(
        clean,
        headers=headers,
        verify=verify,
        timeout=timeout,
        retry=retry,
        routing=routing,
        transport=transport,
        secrets=credentials.secrets,
        health_path=health_path,
    )


def _http_options(
    options: Mapping[str, Any],
    urls: Sequence[str],
    credentials: Credentials,
    *,
    hf_token: bool = True,
) -> tuple[dict[str, str], bool | str, Timeout, float | None]:
    """Validate ``http_request_kwargs``: headers, TLS verification, timeouts and the deadline a
    number ``timeout`` implies."""
    unknown = sorted(set(options) - _HTTP_REQUEST_KEYS)
    if unknown:
        raise ConfigError(
            f"http_request_kwargs does not support {unknown}; supported keys: "
            f"{sorted(_HTTP_REQUEST_KEYS)}"
        )
    headers = _headers(options.get("headers"))
    if credentials.authorization and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = credentials.authorization
    auth = options.get("auth")
    if auth is not None:
        if isinstance(auth, str):
            headers["Authorization"] = f"Bearer {auth}"
        elif isinstance(auth, (tuple, list)) and len(auth) == 2:
            import base64

            basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        else:
            raise ConfigError("auth must be a bearer token string or a (user, password) tuple")
    has_auth = any(k.lower() == "authorization" for k in headers)
    if hf_token and not has_auth and all(u.startswith("https://") for u in urls):
        token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
    verify = options.get("verify", True)
    if not isinstance(verify, (bool, str)):
        raise ConfigError("verify must be True, False or the path of a CA bundle")
    raw_timeout = options.get("timeout")
    deadline: float | None = None
    if raw_timeout is None:
        timeout = Timeout()
    elif isinstance(raw_timeout, Timeout):
        timeout = raw_timeout
    elif isinstance(raw_timeout, (int, float)) and not isinstance(raw_timeout, bool):
        # seconds for the whole call: each attempt, and (as the deadline) all of them together
        seconds = _seconds(raw_timeout, "timeout")
        timeout = Timeout(connect=min(seconds, 10.0), total=seconds)
        deadline = seconds
    elif isinstance(raw_timeout, (tuple, list)) and len(raw_timeout) == 2:
        # requests-style (connect, read); an attempt then lasts at most connect + read in total
        connect = _seconds(raw_timeout[0], "timeout[0] (connect)")
        read = _seconds(raw_timeout[1], "timeout[1] (read)")
        timeout = Timeout(connect=connect, first_byte=read, total=connect + read)
    else:
        raise ConfigError(
            "timeout must be seconds, a (connect, read) pair or a tgispy Timeout, "
            f"got {raw_timeout!r}"
        )
    return headers, verify, timeout, deadline
