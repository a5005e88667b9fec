"""Incremental, I/O-free Server-Sent Events decoding for TGI streams.

Line splitting and field parsing are httpx-sse's maintained decoders; this module only adds the
byte side (incremental UTF-8, so a chunk may end inside a multi-byte character) and hands back
each event's ``data`` payload. It reads both TGI's ``data:{json}`` (<= 2.0) and ``data: {json}``
(>= 2.1) forms, ``\\r\\n`` line ends and the ``:`` keep-alive comments TGI sends every 15 s.
"""

from __future__ import annotations

import codecs
from typing import Any

from tgispy.errors import MalformedResponseError

__all__ = ["SSEDecoder"]


def _httpx_sse_decoders() -> Any:
    # Imported on first use: httpx_sse pulls in httpx (~70 ms), which `import tgispy` should not.
    try:
        from httpx_sse import _decoders
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tgispy's SSE decoding needs httpx-sse and httpx: pip install 'httpx-sse>=0.4' httpx"
        ) from exc
    return _decoders


class SSEDecoder:
    """Turn raw stream bytes into the ``data`` payloads of completed events.

    Feed it chunks exactly as they arrive (split anywhere, even inside a UTF-8 sequence or a
    ``\\r\\n`` pair); each call returns the payloads of the events those bytes completed, in
    order. Comments and keep-alives produce nothing, nor do events without data.

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b'data:{"a": 1}\\n\\n: keep-alive\\n\\ndata: [DO')
        ['{"a": 1}']
        >>> decoder.feed(b"NE]\\n\\n")
        ['[DONE]']
    """

    def __init__(self) -> None:
        decoders = _httpx_sse_decoders()
        self._lines = decoders.SSELineDecoder()
        self._events = decoders.SSEDecoder()
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._started = False

    def _decode_bytes(self, chunk: bytes, *, final: bool = False) -> str:
        try:
            text = self._text.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise MalformedResponseError(f"event stream is not valid UTF-8: {exc}") from exc
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):  # the SSE spec lets a stream open with a BOM
                text = text[1:]
        return text

    def _payloads(self, lines: list[str]) -> list[str]:
        payloads: list[str] = []
        decode = self._events.decode
        for line in lines:
            event = decode(line)
            if event is not None and event.data:
                payloads.append(event.data)
        return payloads

    def feed(self, chunk: bytes) -> list[str]:
        """Decode ``chunk`` and return the data of every event it completed.

        Raises:
            MalformedResponseError: the bytes are not valid UTF-8.
        """
        text = self._decode_bytes(chunk)
        if not text:
            return []
        return self._payloads(self._lines.decode(text))

    def close(self) -> list[str]:
        """Flush at the end of the stream.

        An event cut off without its blank line is still returned (the spec would drop it;
        dropping the last payload of a stream silently is worse). Bytes that end inside a UTF-8
        sequence raise :class:`~tgispy.errors.MalformedResponseError`.
        """
        text = self._decode_bytes(b"", final=True)
        lines = self._lines.decode(text) if text else []
        lines.extend(self._lines.flush())
        lines.append("")  # dispatch whatever event is still open
        return self._payloads(lines)
