"""Per-API codecs: how each generation route reads its request and writes its answers.

A codec is made by its route's parser from the request body (deserialisation and the route's
own checks, in TGI's order) and tells the pipeline (:mod:`tgispy.server._pipeline`) what to
generate: the prompts, their parameters, whether to stream, how many permits to hold. Then it
formats what the pipeline produced, field for field as TGI does: a whole answer, stream events,
a mid-stream error and the end of a stream.

* :class:`TGIGenerate`: ``/generate`` and ``/`` without ``stream``.
* :class:`TGIStream`: ``/generate_stream`` and ``/`` with ``stream``.
* :class:`OpenAIChat`: ``/v1/chat/completions``.
* :class:`OpenAICompletions`: ``/v1/completions``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from aiohttp import web

from tgispy.server import _problems as problems
from tgispy.server import _protocol as proto
from tgispy.server._front import Front
from tgispy.server._generation import Generation, Step
from tgispy.server._problems import Problem
from tgispy.server._validation import (
    GenerateParams,
    GenerateRequest,
    Validated,
    check_best_of,
    check_stream_params,
    parse_chat,
    parse_completion,
    parse_generate,
    with_parameters,
)

__all__ = [
    "Codec",
    "OpenAIChat",
    "OpenAICompletions",
    "Parser",
    "TGIGenerate",
    "TGIStream",
    "parse_chat_route",
    "parse_compat_route",
    "parse_completions_route",
    "parse_generate_route",
    "parse_stream_route",
]

_JSON: Final = "application/json"


class Codec(Protocol):
    """What the pipeline needs from one API's request and answer formats."""

    #: the prompts to generate from (one, or ``/v1/completions``' batch)
    prompts: list[str]
    params: GenerateParams
    stream: bool
    #: permits of ``max_concurrent_requests`` held while generating
    permits: int
    #: sequences generated per prompt (TGI's ``best_of``; the best one answers)
    best_of: int

    def stream_checks(self) -> None:
        """Checks made once the stream has started (their errors are stream events)."""
        ...

    def stream_headers(self, front: Front) -> dict[str, str]:
        """Headers of the stream's response, beside the SSE ones."""
        ...

    def answer(
        self,
        front: Front,
        gens: list[Generation],
        validated: Validated | None,
        started: float,
        validated_at: float,
    ) -> web.Response:
        """The whole answer (``gens[0]`` is the best sequence); records the metrics."""
        ...

    def event(self, index: int, step: Step, validated: Validated | None) -> bytes:
        """The stream event(s) for one step of prompt ``index``."""
        ...

    def stream_error(self, problem: Problem) -> bytes:
        """The event reporting ``problem`` in the middle of a stream."""
        ...

    def stream_end(self) -> bytes:
        """What closes a stream (``b""``: nothing)."""
        ...


#: a route's parser: the request (body read here) → its codec
Parser = Callable[[Front, web.Request], Awaitable[Codec]]


# --- TGI ----------------------------------------------------------------------------------------


class _TGI:
    """``GenerateRequest``: one prompt, TGI's parameters."""

    def __init__(self, req: GenerateRequest, *, stream: bool, best_of: int = 1) -> None:
        self.req = req
        self.prompts = [req.inputs]
        self.params = req.parameters
        self.stream = stream
        self.best_of = best_of
        self.permits = best_of
        self.prefix = req.inputs if req.parameters.return_full_text else ""

    def stream_error(self, problem: Problem) -> bytes:
        return proto.sse(problem.body())

    def stream_end(self) -> bytes:
        return b""


class TGIGenerate(_TGI):
    """``/generate`` (``compat=True``: ``/``, whose answer is a one-element list)."""

    def __init__(self, req: GenerateRequest, *, best_of: int, compat: bool = False) -> None:
        super().__init__(req, stream=False, best_of=best_of)
        self.compat = compat

    def stream_checks(self) -> None:  # pragma: no cover - never streams
        return None

    def stream_headers(self, front: Front) -> dict[str, str]:  # pragma: no cover
        return {}

    def answer(
        self,
        front: Front,
        gens: list[Generation],
        validated: Validated | None,
        started: float,
        validated_at: float,
    ) -> web.Response:
        assert validated is not None  # one prompt
        body = proto.dumps(
            proto.generate_response(
                gens, details=validated.details, top_n=validated.top_n_tokens, prefix=self.prefix
            )
        )
        if self.compat:
            body = b"[" + body + b"]"
        front.record(gens[:1], started)
        headers = front.timing_headers(gens[0], started, validated_at, len(self.req.inputs))
        return web.Response(body=body, content_type=_JSON, headers=headers)

    def event(
        self, index: int, step: Step, validated: Validated | None
    ) -> bytes:  # pragma: no cover
        raise NotImplementedError


class TGIStream(_TGI):
    """``/generate_stream``: one ``StreamResponse`` event per token, details on the last."""

    def __init__(self, req: GenerateRequest) -> None:
        super().__init__(req, stream=True)

    def stream_checks(self) -> None:
        check_stream_params(self.params)

    def stream_headers(self, front: Front) -> dict[str, str]:
        return {
            "x-compute-type": front.compute_type,
            "x-compute-characters": str(len(self.req.inputs)),
        }

    def answer(
        self,
        front: Front,
        gens: list[Generation],
        validated: Validated | None,
        started: float,
        validated_at: float,
    ) -> web.Response:  # pragma: no cover - always streams
        raise NotImplementedError

    def event(self, index: int, step: Step, validated: Validated | None) -> bytes:
        assert validated is not None  # one prompt
        return proto.stream_event(
            step, details=validated.details, top_n=validated.top_n_tokens, prefix=self.prefix
        )


async def parse_generate_route(front: Front, request: web.Request) -> Codec:
    """``/generate``."""
    req = parse_generate(await front.read_json(request))
    # Infer::generate_best_of's checks come before the permits are taken.
    return TGIGenerate(req, best_of=check_best_of(req.parameters, front.limits))


async def parse_stream_route(front: Front, request: web.Request) -> Codec:
    """``/generate_stream``."""
    return TGIStream(parse_generate(await front.read_json(request)))


async def parse_compat_route(front: Front, request: web.Request) -> Codec:
    """``/``: ``/generate`` or ``/generate_stream`` as the body's ``stream`` says."""
    req = parse_generate(await front.read_json(request), compat=True)
    if req.parameters.return_full_text is None:
        # TGI's default for `/`: the model's pipeline tag is text-generation.
        req = with_parameters(req, return_full_text=True)
    if req.stream:
        return TGIStream(req)
    return TGIGenerate(req, best_of=check_best_of(req.parameters, front.limits), compat=True)


# --- OpenAI ---------------------------------------------------------------------------------------


class _OpenAI:
    """The OpenAI routes' shared shape: a model name, a creation time, ``[DONE]`` at the end."""

    def __init__(self, front: Front, model: str | None) -> None:
        self.model = model or front.model_id
        self.fingerprint = front.fingerprint
        self.created = int(time.time())

    def stream_checks(self) -> None:
        return None

    def stream_headers(self, front: Front) -> dict[str, str]:
        return {}

    def stream_error(self, problem: Problem) -> bytes:
        return proto.openai_stream_error(problem)

    def stream_end(self) -> bytes:
        return proto.DONE


class OpenAIChat(_OpenAI):
    """``/v1/chat/completions``: the prompt is the chat template applied to the messages."""

    def __init__(
        self,
        front: Front,
        prompt: str,
        params: GenerateParams,
        *,
        stream: bool,
        model: str | None,
        logprobs: bool,
        include_usage: bool,
    ) -> None:
        super().__init__(front, model)
        self.prompts = [prompt]
        self.params = params
        self.stream = stream
        self.permits = 1
        self.best_of = 1
        self.logprobs = logprobs
        self.include_usage = include_usage

    def answer(
        self,
        front: Front,
        gens: list[Generation],
        validated: Validated | None,
        started: float,
        validated_at: float,
    ) -> web.Response:
        front.record(gens, started)
        body = proto.chat_completion(
            gens[0],
            model=self.model,
            fingerprint=self.fingerprint,
            created=self.created,
            logprobs=self.logprobs,
        )
        return web.Response(body=proto.dumps(body), content_type=_JSON)

    def event(self, index: int, step: Step, validated: Validated | None) -> bytes:
        chunk = proto.chat_chunk(
            step,
            model=self.model,
            fingerprint=self.fingerprint,
            created=self.created,
            logprobs=self.logprobs,
        )
        if step.final is not None and self.include_usage:
            chunk += proto.chat_usage_chunk(
                step.final, model=self.model, fingerprint=self.fingerprint, created=self.created
            )
        return chunk


async def parse_chat_route(front: Front, request: web.Request) -> Codec:
    """``/v1/chat/completions``: deserialise, refuse tools, apply the chat template."""
    creq = parse_chat(await front.read_json(request))
    if creq.tools:
        raise problems.tool_error(
            "tools are not supported by tgispy serve; describe the expected JSON with "
            "response_format instead"
        )
    prompt = await front.backend.apply_chat_template(creq.messages)
    return OpenAIChat(
        front,
        prompt,
        creq.parameters,
        stream=creq.stream,
        model=creq.model,
        logprobs=creq.logprobs,
        include_usage=creq.include_usage,
    )


class OpenAICompletions(_OpenAI):
    """``/v1/completions``: a batch of prompts, generated at once."""

    def __init__(
        self,
        front: Front,
        prompts: list[str],
        params: GenerateParams,
        *,
        stream: bool,
        model: str | None,
    ) -> None:
        super().__init__(front, model)
        self.prompts = prompts
        self.params = params
        self.stream = stream
        self.permits = len(prompts)
        self.best_of = 1

    def answer(
        self,
        front: Front,
        gens: list[Generation],
        validated: Validated | None,
        started: float,
        validated_at: float,
    ) -> web.Response:
        front.record(gens, started)
        body = proto.completion(
            gens, model=self.model, fingerprint=self.fingerprint, created=self.created
        )
        return web.Response(body=proto.dumps(body), content_type=_JSON)

    def event(self, index: int, step: Step, validated: Validated | None) -> bytes:
        return proto.completion_chunk(
            index, step, model=self.model, fingerprint=self.fingerprint, created=self.created
        )


async def parse_completions_route(front: Front, request: web.Request) -> Codec:
    """``/v1/completions``: deserialise, refuse ``suffix`` and batches over the limit."""
    creq = parse_completion(await front.read_json(request))
    if creq.suffix:
        raise Problem(
            422,
            "Suffix is not supported and can be achieved by preprocessing the prompt.",
            "suffix not supported",
        )
    if len(creq.prompts) > front.limits.max_client_batch_size:
        raise Problem(
            422,
            "Number of prompts exceeds the maximum allowed batch size of "
            f"{front.limits.max_client_batch_size}",
            "batch size exceeded",
        )
    return OpenAICompletions(
        front, creq.prompts, creq.parameters, stream=creq.stream, model=creq.model
    )
