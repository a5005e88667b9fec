"""What a TGI server says about itself in ``GET /info`` (pure, I/O-free).

The router uses :class:`ServerInfo` to reject requests a replica would refuse (too many stop
sequences, ``best_of`` above the server's limit, parameters its version does not know) before
anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from tgispy.errors import MalformedResponseError
from tgispy.tgi._protocol import FEATURE_SINCE, INFO_FIELDS

__all__ = ["PARAMETER_SINCE", "ServerInfo"]

_VERSION = re.compile(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")

#: The first TGI version that knows each request feature (derived from
#: :data:`tgispy.tgi._protocol.FEATURE_SINCE`). Older servers silently ignore unknown body fields,
#: so sending one of these to them would lose it without a word.
PARAMETER_SINCE: Mapping[str, tuple[int, int, int]] = FEATURE_SINCE


def _int_or_none(value: Any) -> int | None:
    # bool is an int subclass; a bool where a count belongs is a broken /info, not a count.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ServerInfo:
    """The limits and version a replica reports in ``GET /info``.

    Every field is optional: an unknown value means "do not enforce client-side" and the server
    stays the judge. ``max_input_tokens`` is also read from ``max_input_length``, its name before
    TGI 2.1.0.

    Example:
        >>> info = ServerInfo.from_json({"version": "3.3.6-dev0", "max_best_of": 2})
        >>> info.version_tuple, info.supports_grammar
        ((3, 3, 6), True)
    """

    model_id: str | None = None
    version: str | None = None
    max_input_tokens: int | None = None
    max_total_tokens: int | None = None
    max_best_of: int | None = None
    max_stop_sequences: int | None = None
    max_concurrent_requests: int | None = None
    max_client_batch_size: int | None = None
    model_pipeline_tag: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerInfo:
        """Build from a decoded ``/info`` body; missing, extra or mistyped keys are tolerated.

        Raises:
            MalformedResponseError: ``data`` is not a JSON object.

        Example:
            >>> ServerInfo.from_json({"max_input_length": 1024}).max_input_tokens
            1024
        """
        if not isinstance(data, Mapping):
            raise MalformedResponseError(
                f"/info must return a JSON object, got {type(data).__name__}"
            )
        values: dict[str, Any] = {}
        for name, (read, formerly) in _READERS.items():
            value = read(data.get(name))
            if value is None and formerly is not None:
                value = read(data.get(formerly))
            values[name] = value
        return cls(**values)

    @property
    def version_tuple(self) -> tuple[int, int, int] | None:
        """``(major, minor, patch)`` of :attr:`version` (``"3.3.6-dev0"`` -> ``(3, 3, 6)``).

        ``None`` when the version is absent or does not start with a number.
        """
        if self.version is None:
            return None
        match = _VERSION.match(self.version)
        if match is None:
            return None
        major, minor, patch = match.groups()
        try:
            return (int(major), int(minor or 0), int(patch or 0))
        except ValueError:  # more digits than int() converts (4300): not a version
            return None

    def supports(self, feature: str) -> bool:
        """Whether this server's version knows ``feature`` (a key of :data:`PARAMETER_SINCE`).

        An unknown version counts as supporting everything: tgispy then sends the request and
        lets the server answer, rather than refusing something it cannot know is unsupported.
        """
        have = self.version_tuple
        return have is None or have >= PARAMETER_SINCE[feature]

    @property
    def supports_grammar(self) -> bool:
        """``parameters.grammar`` / chat ``response_format`` (TGI >= 1.4.1; True if unknown)."""
        return self.supports("grammar")

    @property
    def supports_chat(self) -> bool:
        """``POST /v1/chat/completions`` (TGI >= 1.4.0; True if unknown)."""
        return self.supports("chat")

    @property
    def supports_frequency_penalty(self) -> bool:
        """``frequency_penalty`` (TGI >= 1.4.1; True if unknown)."""
        return self.supports("frequency_penalty")

    @property
    def supports_adapters(self) -> bool:
        """``parameters.adapter_id`` for LoRA adapters (TGI >= 2.1.0; True if unknown)."""
        return self.supports("adapter_id")

    @property
    def supports_stream_usage(self) -> bool:
        """Chat ``stream_options.include_usage`` (TGI >= 2.3.0; True if unknown)."""
        return self.supports("stream_options")


_READ_BY_TYPE = {"integer": _int_or_none, "string": _str_or_none}
#: How each :class:`ServerInfo` field is read: by its JSON type in the protocol table, also
#: under its former name (``max_input_length`` before TGI 2.1.0).
_READERS: Mapping[str, tuple[Callable[[Any], Any], str | None]] = {
    info.name: (_READ_BY_TYPE[info.json_type], info.formerly)
    for info in INFO_FIELDS
    if info.name in {f.name for f in fields(ServerInfo)}
}
