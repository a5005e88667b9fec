"""The DSPy 3.4 engines: tgispy's TGI fleet client behind ``dspy.LM(engine=..., async_engine=...)``.

DSPy 3.4's ``dspy.LM`` owns the response cache, retries, ``n`` fan-out, history, callbacks and
usage tracking, and hands its engine one canonical ``dspy.lm15.Request`` per attempt. The engines
here answer it through :class:`~tgispy.tgi._client.TGIClient`: replica routing (p2c by default),
outlier ejection, ``/info``-aware validation, keep-alive pools, and (by default) fast fail-over
retries across replicas. :func:`tgi_lm` builds the ``dspy.LM`` with DSPy's own retries off, so the
two retry loops never multiply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any, TypeAlias, cast

from tgispy.integrations._dspy_require import require_dspy

require_dspy()

import dspy  # noqa: E402
from dspy.clients.engines.base import validate_request  # noqa: E402
from dspy.lm15 import Request, Response  # noqa: E402

from tgispy._sync import iterate_sync, run_sync  # noqa: E402
from tgispy.errors import ConfigError, TGIError  # noqa: E402
from tgispy.integrations._dspy_wire import (  # noqa: E402
    CHAT_PARAMETERS,
    GENERATE_PARAMETERS,
    ChatStreamMapper,
    Endpoint,
    GenerateStreamMapper,
    PromptFormat,
    WireRequest,
    build_wire_request,
    chat_response,
    generate_response,
    to_lm15_error,
)
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

__all__ = ["AsyncTGIEngine", "TGIEngine", "tgi_lm"]

_ENDPOINTS = ("chat", "generate")

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


def _timeout(value: Timeout | float | None) -> Timeout | float | None:
    if value is None or isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"timeout must be seconds or a tgispy Timeout, got {value!r}")
    return float(value)


class AsyncTGIEngine:
    """DSPy 3.4 async engine over one or more TGI replicas (``dspy.LM(async_engine=...)``).

    One attempt per call, as DSPy's engine contract asks: DSPy owns caching, ``n`` fan-out and its
    own retries. Underneath, the tgispy client routes each attempt to a healthy replica and, per
    ``retry``, fails over to another one (see :func:`tgi_lm` for how the two retry loops compose).

    Args:
        urls: replica base URLs, e.g. ``"http://127.0.0.1:8080"`` or a list of them (https and
            path prefixes allowed, e.g. HF Inference Endpoints).
        endpoint: ``"chat"`` (TGI's Messages API, ``/v1/chat/completions``; the server applies the
            model's chat template) or ``"generate"`` (``/generate``, for text models; the prompt
            is rendered by ``prompt_format``).
        headers: extra headers for every request; never logged, never saved.
        auth: a bearer token (``HF_TOKEN`` is used for https replicas when neither is given).
        verify: TLS verification (``True``, ``False`` or a CA bundle path).
        timeout: per-attempt timeouts (seconds or a :class:`~tgispy.tgi.Timeout`).
        retry: tgispy's retry policy (default: 4 attempts, fast fail-over); use
            ``RetryPolicy.none()`` to leave retrying to DSPy alone.
        routing: replica routing and ejection policy.
        adapter_id: a LoRA adapter served by TGI (>= 2.1) to use for every request.
        parameters: TGI-native generation defaults (e.g. ``{"repetition_penalty": 1.1}`` for
            ``/generate``); the request's own values win.
        prompt_format: ``/generate`` only: renders a ``dspy.lm15.Request`` as the prompt
            (default: DSPy's text-model rendering, :func:`default_prompt`).
        client: share an existing :class:`~tgispy.tgi._client.TGIClient` (its replicas and
            health) instead of building one from the arguments above.
        transport: the HTTP transport (default aiohttp; :class:`tgispy.testing.MockTransport`
            answers in-process for tests).

    Example:
        >>> engine = AsyncTGIEngine("http://127.0.0.1:8080")
        >>> engine.supports_response_schema
        True
    """

    supports_response_schema = True
    #: TGI's tool calling is grammar-based and cannot replay tool results (no ``tool_call_id``);
    #: DSPy's adapters fall back to text tool calling, which works on every model.
    supports_function_calling = False
    supports_reasoning = False

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        endpoint: Endpoint = "chat",
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
        if endpoint not in _ENDPOINTS:
            raise ConfigError(f"endpoint must be 'chat' or 'generate', got {endpoint!r}")
        if prompt_format is not None and endpoint != "generate":
            raise ConfigError("prompt_format renders /generate prompts; pass endpoint='generate'")
        allowed = CHAT_PARAMETERS if endpoint == "chat" else GENERATE_PARAMETERS
        params = dict(parameters or {})
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ConfigError(
                f"parameters {unknown} are not TGI {endpoint} parameters an engine may set; "
                f"supported: {sorted(allowed)} (n, response_format, tools and logprobs come from "
                "DSPy's request)"
            )
        self.endpoint: Endpoint = endpoint
        self.adapter_id = adapter_id
        self.parameters = params
        self.prompt_format = prompt_format
        self._verify = verify
        if client is None:
            options: dict[str, Any] = {"headers": dict(headers or {}), "verify": verify}
            if auth is not None:
                options["auth"] = auth
            if timeout is not None:
                options["timeout"] = _timeout(timeout)
            client = fleet_client(
                replica_urls(urls, None),
                options,
                retry=retry,
                routing=routing,
                transport=transport,
            )
        self._client = client
        # Catch bad defaults now, before any network call.
        probe = Request(model="tgi/check", messages=(dspy.lm15.Message.user("check"),))
        try:
            build_wire_request(probe, **{**self._build_options(), "prompt_format": None})
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
    def supported_params(self) -> frozenset[str]:
        """The OpenAI-style parameters this engine carries (DSPy's adapters read this)."""
        return _CHAT_PARAMS if self.endpoint == "chat" else _GENERATE_PARAMS

    def _build_options(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "parameters": self.parameters,
            "adapter_id": self.adapter_id,
            "prompt_format": self.prompt_format,
        }

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
        except (TGIError, ConfigError) as exc:
            raise to_lm15_error(exc) from exc

    async def stream(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """Stream one request as lm15 events: ``start``, text ``delta``s, then ``end``.

        Before the first event a failed attempt is retried per ``retry``; after it, errors are
        raised (DSPy never replays a stream that already emitted output).
        """
        try:
            wire = await self._wire(request, stream=True)
            # aclosing: when DSPy stops reading early, the HTTP stream is released right away
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
            source = cast(
                AsyncGenerator[Any, None], self._client.generate_stream(wire.path, wire.body)
            )
            async with contextlib.aclosing(source) as tgi_events:
                async for tgi_event in tgi_events:
                    for event in gen.feed(tgi_event):
                        yield event
        except (TGIError, ConfigError) as exc:
            raise to_lm15_error(exc) from exc

    async def aclose(self) -> None:
        """Nothing to release: connection pools belong to event loops and close with them."""

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per replica: requests, errors by kind, ejections, in-flight, latency p50/p99."""
        return self._client.stats()

    # ---- saving programs (dspy.LM.dump_state) -------------------------------------------------
    def dump_state(self) -> dict[str, Any]:
        """JSON-safe state to rebuild this engine; headers and tokens are never included.

        Raises:
            TypeError: the engine has a custom ``prompt_format``, which cannot be saved; rebuild
                the engine in code after loading instead.
        """
        if self.prompt_format is not None:
            raise TypeError(
                "a TGI engine with a custom prompt_format cannot be saved; save the program "
                "without its LM and set the LM again after loading"
            )
        timeout = self._client.timeout
        return {
            "urls": list(self.urls),
            "endpoint": self.endpoint,
            "adapter_id": self.adapter_id,
            "parameters": json.loads(json.dumps(self.parameters)),
            "verify": self._verify,
            "timeout": dataclasses.asdict(timeout),
            "retry": dataclasses.asdict(self._client.retry),
            "routing": dataclasses.asdict(self._client.routing),
        }

    @classmethod
    def load_state(cls, state: Mapping[str, Any]) -> AsyncTGIEngine:
        """Rebuild an engine from :meth:`dump_state` (credentials come from ``HF_TOKEN``)."""
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

    supports_response_schema = AsyncTGIEngine.supports_response_schema
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
    endpoint: Endpoint = "chat",
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
    """A ``dspy.LM`` that reaches TGI through tgispy's fleet client (sync and async engines).

    Retries compose as follows: tgispy's ``retry`` fails an attempt over to another replica within
    milliseconds, bounded by its retry budget; DSPy's ``num_retries`` re-runs the whole call after
    1 s, 2 s, 4 s ... on retryable errors. A call makes at most ``(num_retries + 1) *
    retry.max_attempts`` HTTP attempts, so this function turns DSPy's retries off
    (``num_retries=0``) by default. To let DSPy retry instead, pass ``num_retries=3,
    retry=RetryPolicy.none()``.

    Args:
        model: DSPy's name for the model (history, cache keys), e.g.
            ``"tgi/HuggingFaceTB/SmolLM2-135M-Instruct"``; TGI serves what it was started with.
        urls: replica base URLs.
        endpoint: as for :class:`AsyncTGIEngine`.
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
    engine = TGIEngine(
        aio=AsyncTGIEngine(
            urls,
            endpoint=endpoint,
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
    return dspy.LM(
        model, engine=engine, async_engine=engine.aio, num_retries=num_retries, **lm_kwargs
    )
