"""Turn the seed's ``(url, port)`` arguments into replica base URLs (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from tgispy.errors import ConfigError

__all__ = ["replica_urls"]

PortArg = int | str | Sequence[int | str] | None
UrlArg = str | Sequence[str]


def _check_base(url: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"url must be a non-empty string such as 'http://localhost', got {url!r}")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"url {url!r} must start with http:// or https:// (e.g. url='http://localhost')"
        )
    if not parts.hostname:
        raise ConfigError(f"url {url!r} has no host name; use e.g. url='http://localhost'")
    if parts.query or parts.fragment:
        raise ConfigError(f"url {url!r} must not have a query string or fragment")
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
            f"url {base!r} already has a port; pass port=None, or drop the port from the url"
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
            raise ConfigError(f"replica {u} is listed twice; list each replica once")
        seen.add(u)
        unique.append(u)
    return tuple(unique)
