"""The DSPy 3.4 engines: tgispy's fleet client behind ``dspy.LM(engine=..., async_engine=...)``.

DSPy 3.4's ``dspy.LM`` owns the response cache, retries, ``n`` fan-out, history, callbacks and
usage tracking, and hands its engine one canonical ``dspy.lm15.Request`` per attempt. The engines
here answer it through :class:`~tgispy.tgi._client.TGIClient`: replica routing (p2c by default),
outlier ejection, keep-alive pools, and (by default) fast fail-over retries across replicas.
:func:`tgi_lm` builds the ``dspy.LM`` with DSPy's own retries off, so the two retry loops never
multiply.

``engine=`` picks the dialect: TGI's own (the default: ``/info``-aware validation, grammars,
``/generate``), or one of :mod:`tgispy.engines` (vLLM, SGLang, llama.cpp, Ollama, any
OpenAI-compatible server), which build the requests and read the answers, streams and errors;
``"auto"`` probes the replicas once and speaks what it finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any, TypeAlias, cast

from tgispy.integrations._dspy_require import require_dspy

require_dspy()

import dspy  # noqa: E402
from dspy.clients.engines.base import validate_request  # noqa: E402
from dspy.lm15 import Request, Response  # noqa: E402

from tgispy._sync import iterate_sync, run_sync  # noqa: E402
from tgispy.engines import ENGINES, Dialect, Limits, Result, dialect_for  # noqa: E402
from tgispy.engines import Request as EngineRequest  # noqa: E402
from tgispy.engines._detect import (  # noqa: E402
    detected_engine,
    fleet_engine,
    probe_replica,
)
from tgispy.engines._discovery import ReplicaLimits  # noqa: E402
from tgispy.errors import ConfigError, TGIError  # noqa: E402
from tgispy.integrations._dspy_wire import (  # noqa: E402
    CHAT_PARAMETERS,
    DIALECT_RESERVED,
    GENERATE_PARAMETERS,
    ChatStreamMapper,
    DialectStreamMapper,
    Endpoint,
    GenerateStreamMapper,
    PromptFormat,
    WireRequest,
    build_wire_request,
    chat_response,
    check_constraint,
    dialect_request,
    dialect_response,
    generate_response,
    to_lm15_error,
)
from tgispy.lm._fleet import base_url_and_prefix  # noqa: E402
from tgispy.lm._tgi import fleet_client  # noqa: E402
from tgispy.tgi._client import TGIClient  # noqa: E402
from tgispy.tgi._endpoints import replica_urls  # noqa: E402
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout  # noqa: E402
from tgispy.tgi._protocol import route_fields  # noqa: E402
from tgispy.tgi._response import parse_generate_response, usage_from_headers  # noqa: E402
from tgispy.tgi._transport import AsyncTransport, HTTPResponse  # noqa: E402

#: one of lm15's StreamStartEvent / StreamDeltaEvent / StreamEndEvent (DSPy exports the classes,
#: not their union)
StreamEvent: TypeAlias = Any

__all__ = ["ENGINE_NAMES", "AsyncTGIEngine", "TGIEngine", "fleet_lm", "tgi_lm"]

logger = logging.getLogger(__name__)

_ENDPOINTS = ("chat", "generate")

#: what ``engine=`` accepts: TGI's own dialect, a :mod:`tgispy.engines` dialect, or ``"auto"``
ENGINE_NAMES: tuple[str, ...] = ("tgi", *ENGINES, "auto")

#: how long a failed limits discovery is remembered before trying again

# The OpenAI-style parameter names DSPy's adapters may look up in ``supported_params``: the
# fields of TGI's chat body (tgispy.tgi._protocol.CHAT_FIELDS) but the ones the engine sets
# itself (messages, model), TGI ignores (n, logit_bias) or DSPy never sends.
_CHAT_PARAMS = frozenset(route_fields("chat")) - {
    "messages",
    "model",
    "n",
    "logit_bias",
    "stream_options",
    "tool_prompt",
}
# /generate: no presence penalty, tools or top alternatives (the wire refuses them), and top_k,
# the one sampling knob DSPy's Config has that TGI's chat route lacks.
_GENERATE_PARAMS = (_CHAT_PARAMS - {"presence_penalty", "top_logprobs", "tools", "tool_choice"}) | {
    "top_k"
}
# What every other dialect carries from DSPy's Config (no tools, no logprobs: see _dspy_wire).
_DIALECT_PARAMS = frozenset(
    {"max_tokens", "temperature", "top_p", "stop", "seed", "frequency_penalty",
     "presence_penalty", "stream"}
)  # fmt: skip


def _dialect_params(dialect: Dialect) -> frozenset[str]:
    params = set(_DIALECT_PARAMS)
    if "json" in dialect.constraint_kinds:
        params.add("response_format")
    if dialect.name != "openai":  # OpenAI's own API has no top_k
        params.add("top_k")
    return frozenset(params)


def _split_prefix(urls: tuple[str, ...], prefix: str | None) -> tuple[tuple[str, ...], str]:
    """Replica roots and the OpenAI routes' prefix: ``http://h:8000/v1`` is root ``http://h:8000``
    with prefix ``/v1`` (an explicit ``prefix`` keeps the URLs as given)."""
    if prefix is not None:
        return urls, prefix
    split = [base_url_and_prefix(u) for u in urls]
    prefixes = {p for _, p in split}
    if len(prefixes) > 1:
        raise ConfigError(
            f"the replica URLs disagree on the API path ({sorted(prefixes)}); give every replica "
            "the same form (all ending in /v1, or none), or pass prefix="
        )
    return tuple(root for root, _ in split), prefixes.pop()


def _timeout(value: Timeout | float | None) -> Timeout | float | None:
    if value is None or isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"timeout must be seconds or a tgispy Timeout, got {value!r}")
    return float(value)


class AsyncTGIEngine:
    """DSPy 3.4 async engine over one or more replicas (``dspy.LM(async_engine=...)``).

    One attempt per call, as DSPy's engine contract asks: DSPy owns caching, ``n`` fan-out and its
    own retries. Underneath, the tgispy client routes each attempt to a healthy replica and, per
    ``retry``, fails over to another one (see :func:`tgi_lm` for how the two retry loops compose).

    Args:
        urls: replica base URLs, e.g. ``"http://127.0.0.1:8080"`` or a list of them (https and
            path prefixes allowed, e.g. HF Inference Endpoints; for OpenAI-style engines an
            ``api_base`` ending in ``/v1`` works too).
        engine: the dialect the replicas speak: ``"tgi"`` (default), ``"vllm"``, ``"sglang"``,
            ``"llamacpp"``, ``"ollama"`` (its native ``/api`` routes), ``"openai"`` (any
            OpenAI-compatible server), or ``"auto"``: probe the replicas once (safe GETs) before
            the first request and speak the engine found.
        endpoint: ``"chat"`` (the chat route; the server applies the model's chat template) or
            ``"generate"`` (text completion: TGI's ``/generate``, ``/v1/completions``, Ollama's
            ``/api/generate``; the prompt is rendered by ``prompt_format``).
        served_model: the model id sent to engines that take one (vLLM, SGLang, Ollama, OpenAI);
            default: DSPy's model name without its provider prefix (``"hosted_vllm/m"`` -> ``m``).
        prefix: the OpenAI routes' prefix under each URL (default: ``/v1``, taken from the URLs
            when they end in it).
        headers: extra headers for every request; never logged, never saved.
        auth: a bearer token (``HF_TOKEN`` is used for https TGI replicas when neither is given;
            never sent to other engines).
        verify: TLS verification (``True``, ``False`` or a CA bundle path).
        timeout: per-attempt timeouts (seconds or a :class:`~tgispy.tgi.Timeout`).
        retry: tgispy's retry policy (default: 4 attempts, fast fail-over); use
            ``RetryPolicy.none()`` to leave retrying to DSPy alone.
        routing: replica routing and ejection policy.
        adapter_id: a LoRA adapter served by TGI (>= 2.1) to use for every request.
        parameters: engine-native generation defaults (TGI: e.g. ``{"repetition_penalty":
            1.1}``; llama.cpp ``min_p``, Ollama ``num_ctx``, ...); the request's own values win.
        prompt_format: ``endpoint="generate"`` only: renders a ``dspy.lm15.Request`` as the
            prompt (default: DSPy's text-model rendering, :func:`default_prompt`).
        client: share an existing :class:`~tgispy.tgi._client.TGIClient` (its replicas and
            health) instead of building one from the arguments above.
        transport: the HTTP transport (default aiohttp; :class:`tgispy.testing.MockTransport`
            answers in-process for tests).

    Example:
        >>> engine = AsyncTGIEngine("http://127.0.0.1:8080")
        >>> engine.supports_response_schema, engine.dialect
        (True, 'tgi')
        >>> AsyncTGIEngine("http://127.0.0.1:8000/v1", engine="vllm").urls
        ('http://127.0.0.1:8000',)
    """

    #: TGI's tool calling is grammar-based and cannot replay tool results (no ``tool_call_id``),
    #: and tools are not sent to the other dialects; DSPy's adapters fall back to text tool
    #: calling, which works on every model.
    supports_function_calling = False
    supports_reasoning = False

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        engine: str = "tgi",
        endpoint: Endpoint = "chat",
        served_model: str | None = None,
        prefix: str | None = None,
        headers: Mapping[str, str] | None = None,
        auth: str | None = None,
        verify: bool | str = True,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        routing: RoutingPolicy | None = None,
        adapter_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        prompt_format: PromptFormat | None = None,
        client: TGIClient | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        if engine not in ENGINE_NAMES:
            raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINE_NAMES)}")
        if endpoint not in _ENDPOINTS:
            raise ConfigError(f"endpoint must be 'chat' or 'generate', got {endpoint!r}")
        if prompt_format is not None and endpoint != "generate":
            raise ConfigError("prompt_format renders /generate prompts; pass endpoint='generate'")
        if engine != "tgi" and adapter_id is not None:
            raise ConfigError(
                f"adapter_id selects a TGI LoRA adapter; for engine={engine!r} serve the adapter "
                "as its own model and pass served_model="
            )
        if served_model is not None and (not isinstance(served_model, str) or not served_model):
            raise ConfigError(f"served_model must be a model id, got {served_model!r}")
        params = dict(parameters or {})
        if engine == "tgi":
            allowed = CHAT_PARAMETERS if endpoint == "chat" else GENERATE_PARAMETERS
            unknown = sorted(set(params) - allowed)
            if unknown:
                raise ConfigError(
                    f"parameters {unknown} are not TGI {endpoint} parameters an engine may set; "
                    f"supported: {sorted(allowed)} (n, response_format, tools and logprobs come "
                    "from DSPy's request)"
                )
        else:
            reserved = sorted(set(params) & DIALECT_RESERVED)
            if reserved:
                raise ConfigError(
                    f"parameters {reserved} are set by the engine and DSPy, not by parameters "
                    "(the model is served_model=; n and streaming come from DSPy's request)"
                )
        self.endpoint: Endpoint = endpoint
        self.adapter_id = adapter_id
        self.parameters = params
        self.prompt_format = prompt_format
        self.served_model = served_model
        self._engine = engine
        self._verify = verify
        self._prefix_arg = prefix
        roots = replica_urls(urls, None)
        if engine != "tgi" and client is None:
            roots, prefix = _split_prefix(roots, prefix)
        self._prefix = prefix if prefix is not None else "/v1"
        #: the dialect spoken (``None``: TGI's own, through the TGI wire builders)
        self._dialect: Dialect | None = (
            dialect_for(engine, prefix=self._prefix) if engine not in ("tgi", "auto") else None
        )
        self._detected = engine != "auto"
        self._replica_limits = ReplicaLimits()
        if client is None:
            options: dict[str, Any] = {"headers": dict(headers or {}), "verify": verify}
            if auth is not None:
                options["auth"] = auth
            if timeout is not None:
                options["timeout"] = _timeout(timeout)
            if self._dialect is not None:
                health = self._dialect.health_path
            else:  # TGI; with "auto", a route every engine serves and that runs no generation
                health = "/health" if engine == "tgi" else self._prefix + "/models"
            client = fleet_client(
                roots,
                options,
                retry=retry,
                routing=routing,
                transport=transport,
                hf_token=engine == "tgi",
                health_path=health,
            )
        self._client = client
        # Catch bad defaults now, before any network call.
        probe = Request(model="tgi/check", messages=(dspy.lm15.Message.user("check"),))
        try:
            if engine == "tgi":
                build_wire_request(probe, **{**self._build_options(), "prompt_format": None})
            elif self._dialect is not None:
                self._dialect.build(self._neutral(self._dialect, probe, stream=False, check=True))
        except dspy.lm15.LM15Error as exc:
            raise ConfigError(f"bad engine parameters: {exc.message}") from exc

    @property
    def urls(self) -> tuple[str, ...]:
        """The replicas' base URLs."""
        return self._client.urls

    @property
    def client(self) -> TGIClient:
        """The underlying tgispy client (shared by this engine's sync face)."""
        return self._client

    @property
    def dialect(self) -> str:
        """The dialect spoken: ``"tgi"``, an engine of :mod:`tgispy.engines`, or ``"auto"``
        until the first request has probed the replicas."""
        if self._dialect is not None:
            return self._dialect.name
        return "tgi" if self._detected else "auto"

    @property
    def supports_response_schema(self) -> bool:
        """Whether DSPy may send a JSON schema (``response_format``): every engine here can
        constrain output to one."""
        return self._dialect is None or "json" in self._dialect.constraint_kinds

    @property
    def supported_params(self) -> frozenset[str]:
        """The OpenAI-style parameters this engine carries (DSPy's adapters read this)."""
        if self._dialect is not None:
            return _dialect_params(self._dialect)
        if not self._detected:
            return _DIALECT_PARAMS | {"response_format"}
        return _CHAT_PARAMS if self.endpoint == "chat" else _GENERATE_PARAMS

    def _build_options(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "parameters": self.parameters,
            "adapter_id": self.adapter_id,
            "prompt_format": self.prompt_format,
        }

    @property
    def _provider(self) -> str:
        return self.dialect

    # ---- discovery (other engines) -------------------------------------------------------------
    async def _speak(self) -> Dialect | None:
        """The dialect for this call (``None``: TGI's); with ``"auto"``, probe first."""
        if not self._detected:
            await self._detect()
            if not self._detected:
                # nothing answered: the generic dialect, and the call reports the failures
                return dialect_for("openai", prefix=self._prefix)
        return self._dialect

    async def _detect(self) -> None:
        probes = await asyncio.gather(*(probe_replica(self._client.get, u) for u in self.urls))
        decided, engine = fleet_engine(self.urls, probes)
        if not decided:
            return  # probe again next call rather than guess for good
        if engine != "tgi":
            self._dialect = dialect_for(detected_engine(engine), prefix=self._prefix)
        self._detected = True
        logger.info("engine='auto': %s speak %s", list(self.urls), self.dialect)

    async def _discover(self, dialect: Dialect) -> Limits | None:
        """What the replicas say they serve (best effort, once per replica; a failed replica is
        asked again after 30 s)."""
        known = await self._replica_limits.update(self._client.get, dialect, self.urls)
        return known[0] if known else None

    # ---- requests --------------------------------------------------------------------------------
    def _neutral(
        self, dialect: Dialect, request: Request, *, stream: bool, check: bool = False
    ) -> EngineRequest:
        return dialect_request(
            request,
            engine=dialect.name,
            constraint_kinds=dialect.constraint_kinds,
            model=self.served_model,
            endpoint=self.endpoint,
            parameters=self.parameters,
            stream=stream,
            prompt_format=None if check else self.prompt_format,
        )

    async def _engine_request(
        self, dialect: Dialect, request: Request, *, stream: bool
    ) -> tuple[EngineRequest, str, dict[str, Any]]:
        validate_request(request)
        neutral = self._neutral(dialect, request, stream=stream)
        wrong_model = dialect.check_model(neutral.model, await self._discover(dialect))
        if wrong_model is not None:
            raise ConfigError(wrong_model)
        path, body = dialect.build(neutral)
        return neutral, path, body

    async def _wire(self, request: Request, *, stream: bool) -> WireRequest:
        validate_request(request)
        info = await self._client.server_info()
        return build_wire_request(request, info=info, stream=stream, **self._build_options())

    async def complete(self, request: Request) -> Response:
        """Answer one canonical request with one ``dspy.lm15.Response`` (one attempt for DSPy).

        Raises:
            dspy.lm15.LM15Error: the mapped failure (``RateLimitError``, ``ServerError``,
                ``TransportError``, ``TimeoutError`` are retryable for DSPy;
                ``InvalidRequestError``, ``ContextLengthError``, ``UnsupportedFeatureError``
                are not).
        """
        try:
            dialect = await self._speak()
            if dialect is not None:
                return await self._complete_dialect(dialect, request)
            return await self._complete_tgi(request)
        except (TGIError, ConfigError) as exc:
            raise to_lm15_error(exc, provider=self._provider) from exc

    async def _complete_dialect(self, dialect: Dialect, request: Request) -> Response:
        neutral, path, body = await self._engine_request(dialect, request, stream=False)

        def parse(resp: HTTPResponse, replica: str) -> Result:
            # inside the attempt: a malformed body, or one that ignored the constraint, is
            # retried on another replica
            result = dialect.parse(neutral, resp.body)
            check_constraint(neutral, result, engine=dialect.name, replica=replica)
            return result

        result, meta = await self._client.post(path, body, parse, errors=dialect.error)
        return dialect_response(
            result, request=request, engine=dialect.name, path=path, replica=meta.replica
        )

    async def _complete_tgi(self, request: Request) -> Response:
        wire = await self._wire(request, stream=False)
        if self.endpoint == "chat":

            def parse_chat(resp: HTTPResponse, replica: str) -> Response:
                # inside the attempt: a malformed body is retried on another replica
                return chat_response(
                    resp.body, request=request, replica=replica, adaptations=wire.adaptations
                )

            response, _ = await self._client.post(wire.path, wire.body, parse_chat)
            return response
        info = self._client.cached_info()
        logprobs = request.config.logprobs is not None

        def parse_generate(resp: HTTPResponse, replica: str) -> Response:
            return generate_response(
                parse_generate_response(resp.body, replica=replica),
                request=request,
                usage=usage_from_headers(resp.headers),
                model=info.model_id if info is not None else None,
                replica=replica,
                logprobs=logprobs,
                adaptations=wire.adaptations,
            )

        response, _ = await self._client.post(wire.path, wire.body, parse_generate)
        return response

    async def stream(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """Stream one request as lm15 events: ``start``, text ``delta``s, then ``end``.

        Before the first event a failed attempt is retried per ``retry``; after it, errors are
        raised (DSPy never replays a stream that already emitted output).
        """
        try:
            dialect = await self._speak()
            if dialect is not None:
                async for event in self._stream_dialect(dialect, request):
                    yield event
                return
            async for event in self._stream_tgi(request):
                yield event
        except (TGIError, ConfigError) as exc:
            raise to_lm15_error(exc, provider=self._provider) from exc

    async def _stream_dialect(
        self, dialect: Dialect, request: Request
    ) -> AsyncGenerator[StreamEvent, None]:
        neutral, path, body = await self._engine_request(dialect, request, stream=True)
        mapper = DialectStreamMapper(model=request.model, engine=dialect.name, path=path)

        def parse(data: str, replica: str) -> list[Any]:
            return dialect.parse_event(neutral, data)

        source = cast(
            AsyncGenerator[Any, None],
            self._client.stream(
                path,
                body,
                parse,
                last=lambda deltas: any(d.done for d in deltas),
                errors=dialect.error,
                framing=dialect.stream_format,
            ),
        )
        # aclosing: when DSPy stops reading early, the HTTP stream is released right away
        async with contextlib.aclosing(source) as payloads:
            async for deltas in payloads:
                for event in mapper.feed(deltas):
                    yield event
        for event in mapper.finish():
            yield event

    async def _stream_tgi(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        wire = await self._wire(request, stream=True)
        if self.endpoint == "chat":
            chat = ChatStreamMapper(model=request.model, adaptations=wire.adaptations)
            chat_source = cast(AsyncGenerator[Any, None], self._client.chat_stream(wire.body))
            async with contextlib.aclosing(chat_source) as chunks:
                async for chunk in chunks:
                    for event in chat.feed(chunk):
                        yield event
            for event in chat.finish():
                yield event
            return
        gen = GenerateStreamMapper(model=request.model, adaptations=wire.adaptations)
        # (the client's stream methods are async generators, annotated as iterators)
        source = cast(AsyncGenerator[Any, None], self._client.generate_stream(wire.path, wire.body))
        async with contextlib.aclosing(source) as tgi_events:
            async for tgi_event in tgi_events:
                for event in gen.feed(tgi_event):
                    yield event

    async def aclose(self) -> None:
        """Nothing to release: connection pools belong to event loops and close with them."""

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99."""
        return self._client.stats()

    # ---- saving programs (dspy.LM.dump_state) -------------------------------------------------
    def dump_state(self) -> dict[str, Any]:
        """JSON-safe state to rebuild this engine; headers and tokens are never included.

        The dialect is saved as asked (``"auto"`` probes again after loading).

        Raises:
            TypeError: the engine has a custom ``prompt_format``, which cannot be saved; rebuild
                the engine in code after loading instead.
        """
        if self.prompt_format is not None:
            raise TypeError(
                "an engine with a custom prompt_format cannot be saved; save the program "
                "without its LM and set the LM again after loading"
            )
        timeout = self._client.timeout
        state: dict[str, Any] = {
            "urls": list(self.urls),
            "engine": self._engine,
            "endpoint": self.endpoint,
            "adapter_id": self.adapter_id,
            "parameters": json.loads(json.dumps(self.parameters)),
            "verify": self._verify,
            "timeout": dataclasses.asdict(timeout),
            "retry": dataclasses.asdict(self._client.retry),
            "routing": dataclasses.asdict(self._client.routing),
        }
        if self._engine != "tgi":
            state["served_model"] = self.served_model
            state["prefix"] = self._prefix  # the URLs are saved as roots
        return state

    @classmethod
    def load_state(cls, state: Mapping[str, Any]) -> AsyncTGIEngine:
        """Rebuild an engine from :meth:`dump_state` (TGI credentials come from ``HF_TOKEN``)."""
        return cls(**_state_kwargs(state))


def _state_kwargs(state: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dict(state)
    kwargs["timeout"] = Timeout(**kwargs["timeout"]) if kwargs.get("timeout") else None
    kwargs["retry"] = RetryPolicy(**kwargs["retry"]) if kwargs.get("retry") else None
    kwargs["routing"] = RoutingPolicy(**kwargs["routing"]) if kwargs.get("routing") else None
    return kwargs


class TGIEngine:
    """DSPy 3.4 sync engine (``dspy.LM(engine=...)``): the sync face of :class:`AsyncTGIEngine`.

    Takes the same arguments. :attr:`aio` is the async engine sharing this engine's client
    (replicas, health, pools); pass it as ``async_engine=`` so ``acall`` and threads route
    through one fleet view.

    Example:
        >>> import dspy
        >>> engine = TGIEngine(["http://127.0.0.1:8080", "http://127.0.0.1:8081"])
        >>> lm = dspy.LM("tgi/SmolLM2-135M-Instruct", engine=engine, async_engine=engine.aio,
        ...              num_retries=0)
    """

    supports_function_calling = AsyncTGIEngine.supports_function_calling
    supports_reasoning = AsyncTGIEngine.supports_reasoning

    def __init__(
        self,
        urls: str | Sequence[str] | None = None,
        *,
        aio: AsyncTGIEngine | None = None,
        **kw: Any,
    ) -> None:
        if aio is None:
            if urls is None:
                raise ConfigError("TGIEngine needs urls (or aio=<an AsyncTGIEngine>)")
            aio = AsyncTGIEngine(urls, **kw)
        elif urls is not None or kw:
            raise ConfigError("pass either aio=<an AsyncTGIEngine> or engine arguments, not both")
        self.aio = aio

    @property
    def urls(self) -> tuple[str, ...]:
        """The replicas' base URLs."""
        return self.aio.urls

    @property
    def supported_params(self) -> frozenset[str]:
        """The OpenAI-style parameters this engine carries (DSPy's adapters read this)."""
        return self.aio.supported_params

    @property
    def supports_response_schema(self) -> bool:
        """See :attr:`AsyncTGIEngine.supports_response_schema`."""
        return self.aio.supports_response_schema

    @property
    def dialect(self) -> str:
        """See :attr:`AsyncTGIEngine.dialect`."""
        return self.aio.dialect

    def complete(self, request: Request) -> Response:
        """Sync face of :meth:`AsyncTGIEngine.complete`."""
        return run_sync(self.aio.complete(request))

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        """Sync face of :meth:`AsyncTGIEngine.stream`: iterate events as they arrive."""
        return iterate_sync(self.aio.stream(request))

    def close(self) -> None:
        """Nothing to release: connection pools belong to event loops and close with them."""

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99."""
        return self.aio.stats()

    def dump_state(self) -> dict[str, Any]:
        """See :meth:`AsyncTGIEngine.dump_state`."""
        return self.aio.dump_state()

    @classmethod
    def load_state(cls, state: Mapping[str, Any]) -> TGIEngine:
        """Rebuild from :meth:`dump_state` (a new client: replica health is not saved)."""
        return cls(aio=AsyncTGIEngine.load_state(state))


def tgi_lm(
    model: str,
    urls: str | Sequence[str],
    *,
    engine: str = "tgi",
    endpoint: Endpoint = "chat",
    served_model: str | None = None,
    prefix: str | None = None,
    headers: Mapping[str, str] | None = None,
    auth: str | None = None,
    verify: bool | str = True,
    timeout: Timeout | float | None = None,
    retry: RetryPolicy | None = None,
    routing: RoutingPolicy | None = None,
    adapter_id: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    prompt_format: PromptFormat | None = None,
    num_retries: int = 0,
    transport: AsyncTransport | None = None,
    **lm_kwargs: Any,
) -> dspy.LM:
    """A ``dspy.LM`` that reaches a fleet through tgispy's fleet client (sync and async engines).

    TGI by default; ``engine=`` names another dialect (``"vllm"``, ``"sglang"``, ``"llamacpp"``,
    ``"ollama"``, ``"openai"``) or ``"auto"`` (see :func:`fleet_lm`).

    Retries compose as follows: tgispy's ``retry`` fails an attempt over to another replica within
    milliseconds, bounded by its retry budget; DSPy's ``num_retries`` re-runs the whole call after
    1 s, 2 s, 4 s ... on retryable errors. A call makes at most ``(num_retries + 1) *
    retry.max_attempts`` HTTP attempts, so this function turns DSPy's retries off
    (``num_retries=0``) by default. To let DSPy retry instead, pass ``num_retries=3,
    retry=RetryPolicy.none()``.

    Args:
        model: DSPy's name for the model (history, cache keys), e.g.
            ``"tgi/HuggingFaceTB/SmolLM2-135M-Instruct"``; TGI serves what it was started with,
            other engines get it without the provider prefix (or ``served_model``).
        urls: replica base URLs.
        engine: as for :class:`AsyncTGIEngine`.
        endpoint: as for :class:`AsyncTGIEngine`.
        served_model: as for :class:`AsyncTGIEngine`.
        prefix: as for :class:`AsyncTGIEngine`.
        headers: as for :class:`AsyncTGIEngine`.
        auth: as for :class:`AsyncTGIEngine`.
        verify: as for :class:`AsyncTGIEngine`.
        timeout: as for :class:`AsyncTGIEngine`.
        retry: as for :class:`AsyncTGIEngine`.
        routing: as for :class:`AsyncTGIEngine`.
        adapter_id: as for :class:`AsyncTGIEngine`.
        parameters: as for :class:`AsyncTGIEngine`.
        prompt_format: as for :class:`AsyncTGIEngine`.
        transport: as for :class:`AsyncTGIEngine`.
        num_retries: DSPy's retries of a failed call (default 0: tgispy retries).
        **lm_kwargs: anything else ``dspy.LM`` takes: ``cache``, ``callbacks``, ``temperature``,
            ``max_tokens``, ``top_p``, ``stop``, ``seed``, ...

    Example:
        >>> import dspy
        >>> from tgispy.integrations.dspy import tgi_lm
        >>> lm = tgi_lm("tgi/smollm2", ["http://127.0.0.1:8080", "http://127.0.0.1:8081"],
        ...             max_tokens=256)
        >>> dspy.configure(lm=lm)
    """
    sync = TGIEngine(
        aio=AsyncTGIEngine(
            urls,
            engine=engine,
            endpoint=endpoint,
            served_model=served_model,
            prefix=prefix,
            headers=headers,
            auth=auth,
            verify=verify,
            timeout=timeout,
            retry=retry,
            routing=routing,
            adapter_id=adapter_id,
            parameters=parameters,
            prompt_format=prompt_format,
            transport=transport,
        )
    )
    return dspy.LM(model, engine=sync, async_engine=sync.aio, num_retries=num_retries, **lm_kwargs)


def fleet_lm(
    model: str,
    urls: str | Sequence[str],
    *,
    engine: str = "auto",
    **kwargs: Any,
) -> dspy.LM:
    """A ``dspy.LM`` on any self-hosted fleet: :func:`tgi_lm` with ``engine="auto"`` by default.

    With ``"auto"`` the replicas are probed once (safe GETs: ``/v1/models``, ``/api/version``,
    ``/version``, ``/props``, ``/info``) before the first request; TGI is spoken natively, vLLM,
    SGLang, llama.cpp and Ollama through their dialects, anything else as a generic
    OpenAI-compatible server. Name the engine to skip the probe.

    Args:
        model: DSPy's name for the model; the served id is the part after the provider prefix
            (``"hosted_vllm/meta-llama/Llama-3.1-8B"``), or pass ``served_model=``.
        urls: replica base URLs (``http://host:8000`` or ``http://host:8000/v1``).
        engine: ``"auto"`` or one of :data:`ENGINE_NAMES`.
        **kwargs: everything :func:`tgi_lm` takes (``served_model``, ``retry``, ``routing``,
            ``parameters``, ``max_tokens``, ``cache``...).

    Example:
        >>> import dspy
        >>> from tgispy.integrations.dspy import fleet_lm
        >>> lm = fleet_lm("hosted_vllm/meta-llama/Llama-3.1-8B",
        ...               ["http://gpu1:8000/v1", "http://gpu2:8000/v1"], engine="vllm")
        >>> lm.engine.dialect, lm.engine.urls
        ('vllm', ('http://gpu1:8000', 'http://gpu2:8000'))
    """
    return tgi_lm(model, urls, engine=engine, **kwargs)
