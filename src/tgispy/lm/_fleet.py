"""``FleetLM``: the shared base of every non-TGI client (OpenAI-compatible, vLLM, SGLang,
llama.cpp, Ollama), on the same fleet core as ``HFClientTGI``.

One engine dialect (:mod:`tgispy.engines`) builds each request and parses each reply; the fleet
client (:class:`~tgispy.tgi.TGIClient`) routes, retries and ejects; the LM base class keeps history
and the DSPy 2.4 call shapes; the cache is ``HFClientTGI``'s. What is engine-specific lives in the
dialect, never here: this module only turns DSPy kwargs into a neutral request, splits ``n``
(server-side where the dialect says so, else fan-out) and always returns exactly ``n`` choices.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Literal

from tgispy._sync import iterate_sync, run_sync
from tgispy.engines import Constraint, Dialect, Limits, Request, Result, dialect_for
from tgispy.engines._detect import detected_engine, fleet_engine, probe_replica
from tgispy.engines._discovery import ReplicaLimits
from tgispy.errors import ConfigError
from tgispy.lm._base import LM, Completion, Generation, render_messages
from tgispy.lm._tgi import (
    _from_cache,
    _key,
    _pop_route_key,
    _resolve_cache,
    _sum_usage,
    _to_cache,
    fleet_client,
)
from tgispy.tgi._client import TGIClient
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout
from tgispy.tgi._transport import HTTPResponse

__all__ = ["FleetLM", "ModelType", "base_url_and_prefix", "request_from_kwargs"]

logger = logging.getLogger(__name__)

ModelType = Literal["text", "chat"]

#: kwargs the 2.4 clients keep in ``self.kwargs`` that are not generation parameters
_NOT_SENT = frozenset(
    {"model", "port", "url", "model_type", "system_prompt", "cache", "num_generations", "version"}
)
#: how long a failed limits discovery is remembered before trying again


def base_url_and_prefix(url: str) -> tuple[str, str]:
    """Split an OpenAI-style ``api_base`` into the replica's root URL and the routes' prefix.

    The root is where the engine's own routes live (``/health``, ``/props``, ``/api/show``); the
    OpenAI routes go under the prefix. ``.../v1`` splits off ``/v1``; a bare host gets ``/v1`` (no
    server serves the OpenAI routes at its root); any other path is kept, and the routes go
    right under it (the OpenAI SDK's rule).

    Example:
        >>> base_url_and_prefix("http://gpu:8000/v1/")
        ('http://gpu:8000', '/v1')
        >>> base_url_and_prefix("http://gpu:8000")
        ('http://gpu:8000', '/v1')
        >>> base_url_and_prefix("https://proxy.example/llm/openai")
        ('https://proxy.example/llm/openai', '')
    """
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"api_base must be an http(s) URL such as 'http://localhost:8000/v1', got {url!r}"
        )
    url = url.rstrip("/")
    if url.endswith("/v1"):
        return url[: -len("/v1")], "/v1"
    return (url, "/v1") if urlsplit(url).path in ("", "/") else (url, "")


def _constraint(merged: Mapping[str, Any]) -> Constraint | None:
    """A neutral constraint from TGI-style ``grammar`` / ``response_format`` kwargs (what the typed
    layer sends) or OpenAI-style ``response_format``."""
    grammar = merged.get("grammar")
    if isinstance(grammar, Mapping):
        kind, value = grammar.get("type"), grammar.get("value")
        if kind in ("json", "json_object"):
            return Constraint("json", value if isinstance(value, Mapping) else {"type": "object"})
        if kind == "regex" and isinstance(value, str):
            return Constraint("regex", value)
        raise ConfigError(
            f"grammar must be {{'type': 'json'|'regex', 'value': ...}}, got {grammar!r}"
        )
    if isinstance(grammar, str):
        return Constraint("grammar", grammar)
    fmt = merged.get("response_format")
    if isinstance(fmt, Mapping):
        kind = fmt.get("type")
        if kind in ("json", "json_object") and isinstance(fmt.get("value"), Mapping):
            return Constraint("json", fmt["value"])
        if kind == "json_schema" and isinstance(fmt.get("json_schema"), Mapping):
            return Constraint("json", fmt["json_schema"].get("schema") or {"type": "object"})
        if kind in ("json", "json_object"):
            return Constraint("json", fmt.get("schema") or {"type": "object"})
        if kind == "text":
            return None
        raise ConfigError(f"unsupported response_format {fmt!r}; use a json_schema")
    return None


def _optional_float(merged: Mapping[str, Any], key: str) -> float | None:
    value = merged.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    return float(value)


def _optional_int(merged: Mapping[str, Any], key: str) -> int | None:
    value = merged.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    return value


def _stops_of(merged: Mapping[str, Any]) -> tuple[str, ...]:
    stop = merged.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        return tuple(stop)
    raise ConfigError(f"stop must be a string or a list of strings, got {stop!r}")


def _n_of(merged: Mapping[str, Any]) -> int:
    n = merged.get("n") or 1
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    return n


def _max_tokens_of(merged: Mapping[str, Any]) -> int | None:
    return _optional_int(
        {"max_tokens": merged.get("max_tokens", merged.get("num_predict"))}, "max_tokens"
    )


#: each :class:`~tgispy.engines.Request` field read from DSPy kwargs: the kwargs it comes from and
#: how it is read (and checked), in the order the checks run
_FIELDS: tuple[tuple[str, frozenset[str], Callable[[Mapping[str, Any]], Any]], ...] = (
    ("stop", frozenset({"stop"}), _stops_of),
    ("n", frozenset({"n"}), _n_of),
    ("max_tokens", frozenset({"max_tokens", "num_predict"}), _max_tokens_of),
    ("temperature", frozenset({"temperature"}), lambda m: _optional_float(m, "temperature")),
    ("top_p", frozenset({"top_p"}), lambda m: _optional_float(m, "top_p")),
    ("top_k", frozenset({"top_k"}), lambda m: _optional_int(m, "top_k")),
    ("seed", frozenset({"seed"}), lambda m: _optional_int(m, "seed")),
    (
        "frequency_penalty",
        frozenset({"frequency_penalty"}),
        lambda m: _optional_float(m, "frequency_penalty"),
    ),
    (
        "presence_penalty",
        frozenset({"presence_penalty"}),
        lambda m: _optional_float(m, "presence_penalty"),
    ),
    ("constraint", frozenset({"grammar", "response_format"}), _constraint),
)
#: the kwargs that are request fields (or DSPy call options), never sent as they are
_KNOWN = frozenset(
    {k for _, keys, _ in _FIELDS for k in keys} | {"only_completed", "return_sorted"}
)
_NOT_EXTRA = _KNOWN | _NOT_SENT


def _fields(merged: Mapping[str, Any], keys: AbstractSet[str] | None = None) -> dict[str, Any]:
    """The request fields ``merged`` sets, checked; with ``keys``, only those these kwargs feed."""
    if keys is None:
        return {name: read(merged) for name, _, read in _FIELDS}
    return {name: read(merged) for name, sources, read in _FIELDS if not sources.isdisjoint(keys)}


def request_from_kwargs(
    model: str | None,
    merged: Mapping[str, Any],
    *,
    prompt: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    stream: bool = False,
) -> Request:
    """DSPy-style generation kwargs as a neutral :class:`~tgispy.engines.Request` (pure).

    Known keys become request fields; ``grammar`` / ``response_format`` a constraint; any other
    key goes to the engine as it is (``num_ctx``, ``min_p``, ``repetition_penalty``, ...).

    Example:
        >>> r = request_from_kwargs("m", {"temperature": 0.0, "max_tokens": 5, "stop": "\\n",
        ...                              "num_ctx": 2048}, prompt="hi")
        >>> r.stop, r.extra
        (('\\n',), {'num_ctx': 2048})
    """
    fields = _fields(merged)
    return Request(
        model=model,
        prompt=prompt,
        messages=tuple(messages) if messages is not None else None,
        stream=stream,
        extra={k: v for k, v in merged.items() if k not in _NOT_EXTRA},
        **fields,
    )


@dataclasses.dataclass(frozen=True)
class _Defaults:
    """The LM's default kwargs, read and checked once: the request fields and extra keys they
    set, and what they were (a deep copy, types included, to notice a later change)."""

    items: list[tuple[str, Any]]
    types: list[type]
    fields: dict[str, Any]
    extra: dict[str, Any]

    @classmethod
    def read(cls, kwargs: Mapping[str, Any]) -> _Defaults:
        defaults = {k: v for k, v in kwargs.items() if k != "route_key"}  # per call, never sent
        return cls(
            items=copy.deepcopy(list(kwargs.items())),
            types=list(map(type, kwargs.values())),
            fields=_fields(defaults),
            extra={k: v for k, v in defaults.items() if k not in _NOT_EXTRA},
        )

    def describes(self, kwargs: Mapping[str, Any]) -> bool:
        return list(kwargs.items()) == self.items and list(map(type, kwargs.values())) == self.types


@dataclasses.dataclass(frozen=True)
class _Call:
    """What every request of one call shares: when it began (the fleet client's clock, for a
    number ``timeout=``'s whole-call deadline) and its routing key (``route_key=`` or the
    enclosing ``tgispy.tgi.route_key`` block's; never sent nor cached)."""

    started_at: float
    route_key: str | None


def _split(n: int, per_request: int) -> list[int]:
    per_request = max(1, per_request)
    sizes = [per_request] * (n // per_request)
    if n % per_request:
        sizes.append(n % per_request)
    return sizes


class FleetLM(LM):
    """An LM on tgispy's fleet core that speaks one engine's dialect.

    Subclasses are the DSPy 2.4 client classes (``OpenAI``, ``HFClientVLLM``, ``OllamaLocal``,
    ...): they only turn their 2.4 constructor into these arguments.

    Args:
        model: the model id sent to the engine (and used in cache keys and history).
        urls: the replicas' base URLs.
        engine: ``"openai"``, ``"vllm"``, ``"sglang"``, ``"llamacpp"``, ``"ollama"``, or
            ``"auto"``: probe each replica once (safe GETs) before the first request and speak
            the engine found (the generic OpenAI dialect when none is recognised); replicas that
            run different engines are an error unless ``engine=`` says which dialect to speak.
        prefix: the OpenAI routes' prefix under each URL (``"/v1"``, or ``""`` when the URLs end
            in ``/v1``).
        model_type: ``"text"`` (completions) or ``"chat"`` (chat completions).
        defaults: the generation defaults (the 2.4 class's), under ``kwargs``.
        headers: extra headers (``Authorization`` ...); never logged. A CR, LF or NUL in one is
            a ``ConfigError`` here. ``HF_TOKEN`` is never sent to these engines.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        timeout: seconds for each attempt and for the whole call (retries included, as
            ``HFClientTGI``'s ``http_request_kwargs`` timeout), a requests-style
            ``(connect, read)`` pair, or a :class:`~tgispy.tgi.Timeout` (per attempt only).
        retry: the retry policy (attempts, backoff, deadline).
        routing: the routing policy; ``RoutingPolicy(strategy="prefix")`` keeps requests that
            share a prompt prefix, or a ``route_key``, on one replica.
        cache: ``True`` (memory + disk, shared), ``False``, or an ``LMCache``.
        system_prompt: a system message put before the user's in chat mode.
        transport: the HTTP transport (tests use :class:`tgispy.testing.MockTransport`).

    Calls take ``route_key="user-42"`` (or run inside ``with tgispy.tgi.route_key("user-42"):``)
    to pin a session to its home replica under the ``"prefix"`` routing strategy, as
    ``HFClientTGI`` does; the key is never sent to the engine nor part of the cache key.

    With ``engine="auto"`` an ejected replica is probed with ``GET {prefix}/models`` (the
    generic dialect's health route, which every detectable engine serves), also after detection;
    an explicit ``engine=`` uses that engine's own route (Ollama ``GET /``, SGLang ``/ready``).

    Example:
        >>> lm = FleetLM("m", urls=["http://127.0.0.1:8000"], engine="vllm", cache=False)
        >>> lm.dialect.name, lm.model_type
        ('vllm', 'text')
    """

    provider = "openai"

    def __init__(
        self,
        model: str,
        *,
        urls: Sequence[str],
        engine: str,
        prefix: str = "/v1",
        model_type: str = "text",
        defaults: Mapping[str, Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        timeout: float | tuple[float, float] | Timeout | None = None,
        retry: RetryPolicy | None = None,
        routing: RoutingPolicy | None = None,
        cache: Any = True,
        history_size: int | None = 1000,
        system_prompt: str | None = None,
        transport: Any = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError("model must be the model name the server serves, e.g. model='llama3'")
        if model_type not in ("text", "chat"):
            raise ConfigError(f"model_type must be 'text' or 'chat', got {model_type!r}")
        if not urls:
            raise ConfigError("pass at least one server URL")
        super().__init__(model, history_size=history_size)
        self.kwargs = {**(defaults or {}), **(kwargs or {})}
        self.model_type = model_type
        #: ``"chat"`` or ``"text"``, read by the typed-output layer as ``HFClientTGI.mode`` is
        self.mode = model_type
        self.system_prompt = system_prompt
        self._prefix = prefix
        self._detected = engine != "auto"
        self.dialect: Dialect = dialect_for("openai" if engine == "auto" else engine, prefix=prefix)
        _fields(self.kwargs)  # bad defaults fail now, not later
        #: the defaults read once: a call reads and checks only its own kwargs
        self._known_defaults: _Defaults | None = self._read_defaults()
        # HFClientTGI's builder: user:password@ in a URL is sent as Basic auth and never shown,
        # headers are checked, a number timeout also bounds the whole call. HF_TOKEN is for
        # HuggingFace's servers only: never sent to these engines. With engine="auto" the health
        # route is the generic dialect's ({prefix}/models): every engine detection can find
        # serves it (it is the first detection probe), so it stays right after detection.
        self._client: TGIClient = fleet_client(
            [u.rstrip("/") for u in urls],
            {"headers": headers, "verify": verify, "timeout": timeout},
            retry=retry,
            routing=routing,
            transport=transport,
            hf_token=False,
            health_path=self.dialect.health_path,
        )
        self.urls = self._client.urls
        self._cache = _resolve_cache(cache)
        self._replica_limits = ReplicaLimits()
        #: the merged limits once every replica has answered, for the dialect that asked
        self._settled: tuple[Dialect, Limits | None] | None = None
        #: the model that passed ``check_model`` against these limits (checked once per limits)
        self._model_ok: tuple[Limits | None, str | None] | None = None
        #: probe answers kept for discovery (/v1/models answers both questions)
        self._probed: dict[tuple[str, str], HTTPResponse] = {}

    # ---- discovery ----------------------------------------------------------------------------
    async def detect(self) -> str:
        """The dialect this LM speaks: with ``engine="auto"``, probe every replica (once).

        Raises:
            ConfigError: the replicas run different engines.
        """
        if not self._detected:
            probes = await asyncio.gather(
                *(probe_replica(self._client.get, u, answers=self._probed) for u in self.urls)
            )
            decided, found = fleet_engine(self.urls, probes)
            if not decided:
                # Nothing answered: speak the generic dialect for now (the call will report the
                # connection errors) and probe again next time rather than guess for good.
                return self.dialect.name
            engine = detected_engine(found)
            self.dialect = dialect_for(engine, prefix=self._prefix)
            self._detected = True
            logger.info("engine='auto': %s speak %s", list(self.urls), engine)
        return self.dialect.name

    async def limits(self) -> Limits | None:
        """What the replicas said about themselves (context length, ``n`` per request), merged.

        Read once per replica (``/v1/models``, ``/props``, ...); a replica that does not answer
        is asked again after 30 s, and meanwhile requests go out on the engine's safe defaults.
        """
        dialect = self.dialect
        settled = self._settled
        if settled is not None and settled[0] is dialect:
            return settled[1]
        path = dialect.limits_path
        if path is None:
            self._settled = (dialect, None)  # nothing to ask (Ollama: errors name the model)
            return None
        known = await self._replica_limits.update(
            self._client.get, dialect, self.urls, answers=self._probed
        )
        merged = _merge_limits(known) if known else None
        if self._replica_limits.complete(self.urls) and dialect is self.dialect:
            self._settled = (dialect, merged)  # every replica answered: nothing left to ask
        return merged

    async def supports_grammar(self) -> bool:
        """Whether the engine enforces JSON schemas (typed outputs then send one)."""
        return "json" in self.dialect.constraint_kinds

    # ---- requests -----------------------------------------------------------------------------
    def _messages(self, prompt: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def _request(
        self,
        merged: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        *,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        stream: bool = False,
    ) -> Request:
        """The request for ``merged`` (:attr:`kwargs` under the call's ``kwargs``): the defaults
        were read and checked once; only the call's own kwargs are read here."""
        defaults = self._known_defaults
        if defaults is None or not defaults.describes(self.kwargs):
            defaults = self._known_defaults = self._read_defaults()
        if defaults is None:
            request = request_from_kwargs(
                self.model, merged, prompt=prompt, messages=messages, stream=stream
            )
        else:
            fields = defaults.fields
            extra = defaults.extra
            if kwargs:
                fields = {**fields, **_fields(merged, kwargs.keys())}
                own = {k: v for k, v in kwargs.items() if k not in _NOT_EXTRA and k != "route_key"}
                if own:
                    extra = {**extra, **own}
            request = Request(
                model=self.model,
                prompt=prompt,
                messages=tuple(messages) if messages is not None else None,
                stream=stream,
                extra=extra,
                **fields,
            )
        constraint = request.constraint
        if (
            constraint is not None
            and constraint.kind == "regex"
            and "regex" not in self.dialect.constraint_kinds
            and "grammar" in merged
        ):
            # The typed layer asks for a regex for single-field outputs; an engine without
            # regexes answers unconstrained, and the typed layer validates what comes back.
            logger.info("%s takes no regex constraint; sending it unconstrained", self.dialect.name)
            return dataclasses.replace(request, constraint=None)
        return request

    def _read_defaults(self) -> _Defaults | None:
        """:attr:`kwargs` read again after a change; ``None`` (read them with every call's) when
        they do not pass alone: a call may still override the bad value."""
        try:
            return _Defaults.read(self.kwargs)
        except Exception:  # a bad value (the call reports it), or one that cannot be copied
            return None

    async def _post(
        self, request: Request, index: int, use_cache: bool, call: _Call, prompt: str = ""
    ) -> Generation:
        path, body = self.dialect.build(request)
        key = _key(self.model, f"{self.dialect.name}:{path}#{index}", body) if use_cache else None
        if key is not None:
            hit = _from_cache(prompt, self._cache.get(key))
            if hit is not None:
                usage = hit.usage
                if usage is not None and (not usage or list(usage) != sorted(usage)):
                    hit = dataclasses.replace(hit, usage=_sorted_usage(usage))
                return hit
        dialect = self.dialect

        def parse(resp: HTTPResponse, replica: str) -> Result:
            return dialect.parse(request, resp.body)

        result, meta = await self._client.post(
            path,
            body,
            parse,
            started_at=call.started_at,
            route_key=call.route_key,
            errors=dialect.error,
        )
        generation = Generation(
            prompt=prompt,
            completions=tuple([Completion(c.text, c.finish_reason) for c in result.choices]),
            usage=_sorted_usage(result.usage),
            replica=meta.replica,
        )
        if key is not None:
            self._cache.set(key, _to_cache(generation))
        return generation

    async def _agenerate(
        self, request: Request, use_cache: bool, call: _Call, prompt: str = ""
    ) -> Generation:
        """Exactly ``request.n`` choices: server-side ``n`` where allowed, else fanned out."""
        settled = self._settled
        if settled is not None and settled[0] is self.dialect:
            limits = settled[1]  # what limits() answers, without a coroutine per call
        else:
            limits = await self.limits()
        model_ok = self._model_ok
        if model_ok is None or model_ok[0] is not limits or model_ok[1] != request.model:
            wrong_model = self.dialect.check_model(request.model, limits)
            if wrong_model is not None:
                raise ConfigError(wrong_model)
            self._model_ok = (limits, request.model)
        n = request.n
        # one choice is always one request: the dialect's n rules only split larger n
        sizes = [1] if n == 1 else _split(n, self.dialect.server_n(request, limits))
        if len(sizes) == 1:
            part = await self._post(request, 0, use_cache, call, prompt)  # no task
            if len(part.completions) == n:
                return part  # the usual case: this one reply is the whole answer
            parts = [part]
        else:
            parts = await asyncio.gather(
                *(
                    self._post(dataclasses.replace(request, n=size), index, use_cache, call)
                    for index, size in enumerate(sizes)
                )
            )
        completions = [c for part in parts for c in part.completions]
        missing = n - len(completions)
        if missing > 0:
            # The server ignored n (OpenAI-compatible servers may): fan out the rest.
            more = await asyncio.gather(
                *(
                    self._post(dataclasses.replace(request, n=1), len(sizes) + i, use_cache, call)
                    for i in range(missing)
                )
            )
            parts.extend(more)
            completions.extend(c for part in more for c in part.completions)
        return Generation(
            prompt=prompt,
            completions=tuple(completions[:n]),
            usage=_sum_usage([p.usage for p in parts]),
            replica=parts[0].replica if parts else None,
            cached=all(p.cached for p in parts),
        )

    async def acomplete(self, prompt: str, **kwargs: Any) -> Generation:
        """Generate ``n`` completions of ``prompt`` (a user message in chat mode)."""
        if not isinstance(prompt, str):
            raise ConfigError(f"prompt must be a string, got {type(prompt).__name__}")
        started = self._client.clock()
        if not self._detected:
            await self.detect()
        merged = {**self.kwargs, **kwargs}
        use_cache = bool(merged.pop("cache", True)) and self._cache is not None
        call = _Call(started, _pop_route_key(merged))
        if self.model_type == "chat":
            request = self._request(merged, kwargs, messages=self._messages(prompt))
        else:
            request = self._request(merged, kwargs, prompt=self._format_prompt(prompt))
        return await self._agenerate(request, use_cache, call, prompt)

    def _format_prompt(self, prompt: str) -> str:
        """The text sent for ``prompt`` in text mode (2.4's Together/Anyscale wrap it)."""
        return prompt

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """Send ``messages`` to the chat route; ``{"messages", "choices": [{"text",
        "finish_reason"}], "usage"}``, recorded in :attr:`history`."""
        started_at = self._client.clock()
        started = time.perf_counter()
        if not self._detected:
            await self.detect()
        merged = {**self.kwargs, **kwargs}
        use_cache = bool(merged.pop("cache", True)) and self._cache is not None
        call = _Call(started_at, _pop_route_key(merged))
        generation = await self._agenerate(
            self._request(merged, kwargs, messages=list(messages)), use_cache, call
        )
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

    async def astream(self, prompt: str, **kwargs: Any) -> AsyncGenerator[str, None]:
        """Stream the completion of ``prompt`` piece by piece (one choice; never cached).

        Recorded in :attr:`history` when it ends. Errors before the first piece are retried on
        another replica; mid-stream error events raise typed errors.
        """
        started_at = self._client.clock()
        if not self._detected:
            await self.detect()
        merged = {**self.kwargs, **kwargs}
        call = _Call(started_at, _pop_route_key(merged))
        if self.model_type == "chat":
            request = self._request(merged, kwargs, messages=self._messages(prompt), stream=True)
        else:
            request = self._request(merged, kwargs, prompt=self._format_prompt(prompt), stream=True)
        async for piece in self._astream(request, merged, kwargs, call, prompt=prompt):
            yield piece

    async def achat_stream(
        self, messages: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> AsyncGenerator[str, None]:
        """Stream the chat route's answer to ``messages`` piece by piece (as :meth:`astream`)."""
        started_at = self._client.clock()
        if not self._detected:
            await self.detect()
        merged = {**self.kwargs, **kwargs}
        call = _Call(started_at, _pop_route_key(merged))
        request = self._request(merged, kwargs, messages=list(messages), stream=True)
        async for piece in self._astream(request, merged, kwargs, call, messages=list(messages)):
            yield piece

    def chat_stream(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Iterator[str]:
        """Sync face of :meth:`achat_stream`."""
        return iterate_sync(self.achat_stream(messages, **kwargs))

    async def _astream(
        self,
        request: Request,
        merged: Mapping[str, Any],
        raw_kwargs: Mapping[str, Any],
        call: _Call,
        *,
        prompt: str | None = None,
        messages: list[Mapping[str, Any]] | None = None,
    ) -> AsyncGenerator[str, None]:
        request = dataclasses.replace(request, n=1)
        started = time.perf_counter()
        pieces: list[str] = []
        finish: str | None = None
        usage: Mapping[str, int] | None = None
        replica: str | None = None
        path, body = self.dialect.build(request)
        dialect = self.dialect

        def parse(data: str, served_by: str) -> tuple[str, list[Any]]:
            return served_by, dialect.parse_event(request, data)

        async for served_by, deltas in self._client.stream(
            path,
            body,
            parse,
            last=lambda item: any(d.done for d in item[1]),
            started_at=call.started_at,
            route_key=call.route_key,
            errors=dialect.error,
            framing=dialect.stream_format,
        ):
            replica = served_by
            for delta in deltas:
                usage = delta.usage or usage
                finish = delta.finish_reason or finish
                if delta.index == 0 and delta.text:
                    pieces.append(delta.text)
                    yield delta.text
        text = "".join(pieces)
        choices = [{"text": text, "finish_reason": finish}]
        self._record(
            prompt if prompt is not None else render_messages(messages or []),
            {"prompt": prompt, "choices": choices}
            if messages is None
            else {"messages": messages, "choices": choices},
            kwargs={k: v for k, v in merged.items() if k != "cache"},
            raw_kwargs=dict(raw_kwargs),
            usage=dict(usage) if usage else None,
            started=started,
            replica=replica,
            cached=False,
            finish_reasons=[finish],
            messages=messages,
        )

    def stream(self, prompt: str, **kwargs: Any) -> Iterator[str]:
        """Sync face of :meth:`astream`."""
        return iterate_sync(self.astream(prompt, **kwargs))

    # ---- fleet --------------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99."""
        return self._client.stats()

    def __deepcopy__(self, memo: dict[int, Any]) -> FleetLM:
        # An LM is a shared resource (pools, replica health); programs copy references to it.
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, engine={self.dialect.name!r}, "
            f"replicas={list(self.urls)!r}, model_type={self.model_type!r})"
        )


def _sorted_usage(usage: Mapping[str, int] | None) -> dict[str, int] | None:
    """``usage`` keyed in name order, as :func:`_sum_usage` keys a sum of several."""
    return {k: usage[k] for k in sorted(usage)} if usage else None


def _merge_limits(limits: Sequence[Limits]) -> Limits:
    """The limits every replica accepts: the smallest context and ``n``."""
    if len(limits) == 1:
        return limits[0]
    contexts = [lim.context_length for lim in limits if lim.context_length is not None]
    max_ns = [lim.max_n for lim in limits if lim.max_n is not None]
    return Limits(
        models=limits[0].models,
        context_length=min(contexts) if contexts else None,
        # n is sent server-side only when every replica said how many it takes
        max_n=min(max_ns) if len(max_ns) == len(limits) else None,
        version=limits[0].version,
    )
