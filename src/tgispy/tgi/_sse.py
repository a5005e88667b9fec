"""Incremental, I/O-free Server-Sent Events decoding for TGI streams.

A small decoder of the WHATWG ``text/event-stream`` format
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
incremental UTF-8 (a chunk may end inside a multi-byte character), one leading BOM skipped, lines
ended by CR, LF or CRLF (a CRLF may be split across chunks), ``:`` comments (TGI's keep-alives),
``data`` lines joined with ``\\n``, ``event`` / ``id`` / ``retry`` fields, and unknown fields
ignored. It reads both TGI's ``data:{json}`` (<= 2.0) and ``data: {json}`` (>= 2.1) forms.
"""

from __future__ import annotations

import codecs

from tgispy.errors import MalformedResponseError

__all__ = ["SSEDecoder"]


class SSEDecoder:
    """Turn raw stream bytes into the ``data`` payloads of completed events.

    Feed it chunks exactly as they arrive (split anywhere, even inside a UTF-8 sequence or a
    ``\\r\\n`` pair); each call returns the payloads of the events those bytes completed, in
    order. Comments and keep-alives produce nothing, nor do events without data. The last
    ``id`` and ``retry`` fields seen are kept in :attr:`last_event_id` and :attr:`retry`.

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b'data:{"a": 1}\\n\\n: keep-alive\\n\\ndata: [DO')
        ['{"a": 1}']
        >>> decoder.feed(b"NE]\\n\\n")
        ['[DONE]']
    """

    __slots__ = (
        "_data",
        "_partial",
        "_skip_lf",
        "_started",
        "_text",
        "last_event_id",
        "retry",
    )

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._started = False  # a BOM is skipped only at the very start of the stream
        self._partial = ""  # the text of the line not yet ended
        self._skip_lf = False  # the last text ended with CR: an LF opening the next is its pair
        self._data: list[str] = []
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[str]:
        """Decode ``chunk`` and return the data of every event it completed.

        Raises:
            MalformedResponseError: the bytes are not valid UTF-8.
        """
        return self._lines(self._decode(chunk, final=False), final=False)

    def close(self) -> list[str]:
        """Flush at the end of the stream.

        An event cut off without its blank line is still returned (the spec would drop it;
        dropping the last payload of a stream silently is worse). Bytes that end inside a UTF-8
        sequence raise :class:`~tgispy.errors.MalformedResponseError`.
        """
        return self._lines(self._decode(b"", final=True), final=True)

    def _decode(self, chunk: bytes, *, final: bool) -> str:
        try:
            text = self._text.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise MalformedResponseError(f"event stream is not valid UTF-8: {exc}") from exc
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        return text

    def _lines(self, text: str, *, final: bool) -> list[str]:
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        payloads: list[str] = []
        if text:
            if "\r" in text:
                self._skip_lf = text[-1] == "\r"
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            lines = text.split("\n")
            if self._partial:
                lines[0] = self._partial + lines[0]
            self._partial = lines.pop()
            for line in lines:
                self._line(line, payloads)
        if final:
            if self._partial:
                self._line(self._partial, payloads)
                self._partial = ""
            self._line("", payloads)  # dispatch whatever event is still open
        return payloads

    def _line(self, line: str, payloads: list[str]) -> None:
        if not line:  # a blank line dispatches the event
            if self._data:
                data = "\n".join(self._data)
                if data:
                    payloads.append(data)
                self._data = []
            return
        if line[0] == ":":  # a comment (TGI's keep-alive)
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        # `event` names the type of a dispatched event; TGI sends only unnamed ("message") events
        # and every payload is returned whatever its type, so the field is read and ignored.
        if name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        # `event` and unknown fields are ignored
