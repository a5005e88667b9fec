"""The server's aiohttp middlewares, outermost first (the connection guard's comes before them):

* :func:`problems`: a :class:`~tgispy.server._problems.Problem` raised by a handler becomes TGI's
  error answer (status, JSON or axum's plain text), counted in the metrics;
* :func:`metrics`: counts the generation requests (``tgi_request_count``) that got past
  deserialisation, as TGI counts them;
* :func:`readiness`: requests that need the model wait for it to load (503 if it failed).

The sim's fault injection (:mod:`tgispy.server._faults`) wraps the generation handlers, inside
every middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from tgispy.server._front import Front
from tgispy.server._problems import Problem
from tgispy.tgi._protocol import ENDPOINTS

__all__ = ["GENERATION_ROUTES", "MODEL_ROUTES", "metrics", "problems", "readiness"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the routes that generate (POST): TGI's generation endpoints, and ``/`` (``stream`` decides)
GENERATION_ROUTES: Final = frozenset({"/", *(e.path for e in ENDPOINTS.values())})
#: the routes that need the model loaded (POST)
MODEL_ROUTES: Final = GENERATION_ROUTES | {"/tokenize"}
#: axum's extractor rejections: TGI never reaches its handler (nor its request counter)
_REJECTED: Final = frozenset({"bad_json", "deserialize", "media_type", "payload"})


def problems(front: Front) -> Middleware:
    """Turn a raised :class:`Problem` into its answer."""

    @web.middleware
    async def answer_problems(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as problem:
            return front.error_response(problem)

    return answer_problems


def metrics(front: Front) -> Middleware:
    """Count generation requests (``tgi_request_count``); the pipeline counts the outcomes."""

    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path not in GENERATION_ROUTES:
            return await handler(request)
        front.metrics.request_started()
        try:
            return await handler(request)
        except Problem as problem:
            if problem.error_type in _REJECTED:
                front.metrics.request_rejected()
            raise

    return count_requests


def readiness(front: Front) -> Middleware:
    """Hold requests that need the model until it is loaded (503 when it failed to load)."""

    @web.middleware
    async def wait_for_model(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path in MODEL_ROUTES:
            await front.wait_ready()
        return await handler(request)

    return wait_for_model
