"""Turn the seed's ``(url, port)`` arguments into replica base URLs (pure)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from tgispy.errors import ConfigError

__all__ = ["Credentials", "replica_urls", "split_userinfo"]

PortArg = int | str | Sequence[int | str] | None
UrlArg = str | Sequence[str]


def _shown(url: str) -> str:
    """``url`` as it may appear in an error: no userinfo, no query string, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable url>"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def _check_base(url: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"url must be a non-empty string such as 'http://localhost', got {type(url).__name__}"
        )
    url = url.strip()
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ConfigError(
            f"url {_shown(url)!r} contains whitespace or control characters; "
            "percent-encode them (e.g. %20) or fix the URL"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ConfigError(
            f"url {_shown(url)!r} is not a valid URL; use e.g. url='http://localhost'"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"url {_shown(url)!r} must start with http:// or https:// (e.g. url='http://localhost')"
        )
    if not parts.hostname:
        raise ConfigError(f"url {_shown(url)!r} has no host name; use e.g. url='http://localhost'")
    if parts.query or parts.fragment:
        raise ConfigError(
            f"url {_shown(url)!r} must not have a query string or fragment; pass credentials "
            "with http_request_kwargs={'headers': {...}} instead"
        )
    return url.rstrip("/")


def _port(port: int | str) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise ConfigError(f"port must be an int like 8080, got {port!r}") from None
    if isinstance(port, bool) or not 0 < value < 65536:
        raise ConfigError(f"port must be between 1 and 65535, got {port!r}")
    return value


def _with_port(base: str, port: int) -> str:
    parts = urlsplit(base)
    if parts.port is not None:
        raise ConfigError(
            f"url {_shown(base)!r} already has a port; pass port=None, or drop the port from "
            "the url"
        )
    netloc = f"{parts.netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


def replica_urls(url: UrlArg, port: PortArg) -> tuple[str, ...]:
    """Return the replicas' base URLs (no trailing slash) for the seed's ``url`` and ``port``.

    ``port`` is an int, a list/tuple of ints, or ``None`` for URLs that need no port; ``url`` is one
    base URL or a list of full base URLs (https and path prefixes allowed).

    Example:
        >>> replica_urls("http://localhost", [8080, 8081])
        ('http://localhost:8080', 'http://localhost:8081')
        >>> replica_urls(["https://a.example/v1/", "http://b:80"], None)
        ('https://a.example/v1', 'http://b:80')
    """
    if isinstance(url, str):
        bases = [_check_base(url)]
    elif isinstance(url, Sequence) and url:
        bases = [_check_base(u) for u in url]
    else:
        raise ConfigError(f"url must be a string or a non-empty list of strings, got {url!r}")

    if port is None:
        urls = bases
    elif isinstance(port, (int, str)):
        urls = [_with_port(b, _port(port)) for b in bases]
    elif isinstance(port, Sequence) and not isinstance(port, (bytes, bytearray)):
        if not port:
            raise ConfigError("port list is empty; pass at least one port, e.g. port=[8080, 8081]")
        if len(bases) != 1:
            raise ConfigError(
                "pass either a list of ports with one url, or a list of full urls with port=None"
            )
        urls = [_with_port(bases[0], _port(p)) for p in port]
    else:
        raise ConfigError(f"port must be an int, a list of ints or None, got {port!r}")

    seen: set[str] = set()
    unique: list[str] = []
    for u in urls:
        if u in seen:
            raise ConfigError(f"replica {_shown(u)} is listed twice; list each replica once")
        seen.add(u)
        unique.append(u)
    return tuple(unique)


@dataclass(frozen=True)
class Credentials:
    """Userinfo taken out of replica URLs: sent as Basic auth, kept out of every display.

    Attributes:
        authorization: the ``Authorization`` header value (``None`` when no URL had userinfo).
        secrets: the strings to scrub (``user:password``, the password, the header value).
    """

    authorization: str | None = None
    secrets: tuple[str, ...] = ()


def split_userinfo(urls: Sequence[str]) -> tuple[tuple[str, ...], Credentials]:
    """Strip ``user:password@`` from replica URLs; return the clean URLs and the credentials.

    All replicas of one client must share one userinfo (it becomes one ``Authorization``).

    Example:
        >>> clean, creds = split_userinfo(["https://me:s3cretpass@h.example"])
        >>> clean, creds.authorization
        (('https://h.example',), 'Basic bWU6czNjcmV0cGFzcw==')
    """
    clean: list[str] = []
    found: set[tuple[str, str]] = set()
    for url in urls:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            clean.append(url)
            continue
        found.add((unquote(parts.username or ""), unquote(parts.password or "")))
        netloc = parts.netloc.rpartition("@")[2]
        clean.append(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    if not found:
        return tuple(clean), Credentials()
    if len(found) > 1:
        raise ConfigError(
            "replica URLs carry different user:password@ credentials; use one set for all "
            "replicas of a client, or pass http_request_kwargs={'auth': (user, password)}"
        )
    user, password = found.pop()
    pair = f"{user}:{password}"
    header = "Basic " + base64.b64encode(pair.encode()).decode()
    return tuple(clean), Credentials(header, tuple(v for v in (pair, password, header) if v))
