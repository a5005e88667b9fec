"""Credentials the client holds, and scrubbing them out of anything a server sends back (pure).

A server (or a proxy in front of it: a login page, a debug echo) may put the request's
``Authorization`` value into any body, with any status, JSON or not. Whatever a replica sends is
scrubbed once, where it enters the client, before it is parsed: so no error message, log line,
history entry, ``stats()`` value, cache entry or saved result can carry a credential.

Example:
    >>> s = Secrets.collect({"Authorization": "Bearer hf_abcdefgh12345"})
    >>> s.scrub("echo: Bearer hf_abcdefgh12345")
    'echo: [redacted]'
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["REDACTED", "Secrets"]

REDACTED = "[redacted]"

#: request headers whose values are not credentials (everything else a user sets may be one)
_PUBLIC_HEADERS = frozenset(
    {"content-type", "accept", "accept-encoding", "user-agent", "content-length", "connection"}
)

#: shorter strings are not scrubbed: they would mangle ordinary text and are no real secret
MIN_SECRET_LENGTH = 8


@dataclass(frozen=True, slots=True)
class Secrets:
    """The credential strings of one client, longest first.

    Attributes:
        values: each secret as text.
    """

    values: tuple[str, ...] = ()

    @classmethod
    def collect(cls, headers: Mapping[str, str], extra: Iterable[str] = ()) -> Secrets:
        """Secrets from request ``headers`` (each value, the token after its scheme, and for
        ``Basic`` the decoded ``user:password`` and password) and ``extra`` strings (URL
        userinfo, query values)."""
        found: set[str] = set(extra)
        for name, value in headers.items():
            if name.lower() in _PUBLIC_HEADERS:
                continue
            found.add(value)
            scheme, _, token = value.partition(" ")
            token = token.strip()
            if token:
                found.add(token)
            if scheme.lower() == "basic" and token:
                try:
                    pair = base64.b64decode(token, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    continue
                found.add(pair)
                found.add(pair.partition(":")[2])
        # longest first, so a value is cut whole before its parts
        kept = sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)
        return cls(tuple(kept))

    def __bool__(self) -> bool:
        return bool(self.values)

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``[redacted]``."""
        for secret in self.values:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        """``data`` with every secret (UTF-8 encoded) replaced by ``[redacted]``."""
        for secret in self.values:
            raw = secret.encode()
            if raw in data:
                data = data.replace(raw, REDACTED.encode())
        return data

    def __repr__(self) -> str:
        return f"Secrets({len(self.values)} values)"
