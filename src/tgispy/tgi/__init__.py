"""The TGI layer: wire protocol (pure), fleet policies, and the async client.

The protocol pieces (server info, request building, response / SSE parsing, error mapping) and the
policies are pure and I/O-free; :class:`TGIClient` is the thin async shell that drives them.
"""

from tgispy._public import publish as _publish
from tgispy.tgi._affinity import route_key
from tgispy.tgi._client import Meta, TGIClient
from tgispy.tgi._errors import error_from_payload, error_from_response, parse_retry_after
from tgispy.tgi._fasthttp import FastTransport
from tgispy.tgi._info import ServerInfo
from tgispy.tgi._policy import RetryPolicy, RoutingPolicy, Timeout
from tgispy.tgi._request import (
    CHAT_KEYS,
    CLIENT_ONLY_KEYS,
    GENERATE_KEYS,
    build_chat_request,
    build_generate_request,
    generation_parameters,
)
from tgispy.tgi._response import (
    ChatChunk,
    ChatResponse,
    GeneratedSequence,
    GenerateResponse,
    StreamEvent,
    Token,
    parse_chat_chunk,
    parse_chat_response,
    parse_generate_response,
    parse_stream_event,
    usage_from_headers,
)
from tgispy.tgi._sse import SSEDecoder
from tgispy.tgi._tracing import disable_tracing, enable_tracing
from tgispy.tgi._transport import (
    AiohttpTransport,
    AsyncTransport,
    AttemptTimeouts,
    HTTPRequest,
    HTTPResponse,
    default_transport,
)

__all__ = [
    "CHAT_KEYS",
    "CLIENT_ONLY_KEYS",
    "GENERATE_KEYS",
    "AiohttpTransport",
    "AsyncTransport",
    "AttemptTimeouts",
    "ChatChunk",
    "ChatResponse",
    "FastTransport",
    "GenerateResponse",
    "GeneratedSequence",
    "HTTPRequest",
    "HTTPResponse",
    "Meta",
    "RetryPolicy",
    "RoutingPolicy",
    "SSEDecoder",
    "ServerInfo",
    "StreamEvent",
    "TGIClient",
    "Timeout",
    "Token",
    "build_chat_request",
    "build_generate_request",
    "default_transport",
    "disable_tracing",
    "enable_tracing",
    "error_from_payload",
    "error_from_response",
    "generation_parameters",
    "parse_chat_chunk",
    "parse_chat_response",
    "parse_generate_response",
    "parse_retry_after",
    "parse_stream_event",
    "route_key",
    "usage_from_headers",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
