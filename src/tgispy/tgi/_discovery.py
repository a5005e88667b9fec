"""Live discovery: a replica URL whose host name stands for several servers.

A Kubernetes headless Service or a DNS round-robin name resolves to every replica's address.
With ``RoutingPolicy(discovery_interval=...)`` each URL the client was given (a *seed*) is
resolved to all its addresses, one replica per address, and re-resolved that often. The client
then updates its :class:`~tgispy.tgi._routing.ReplicaSet`: an address that appears joins after a
passing health probe, one that vanishes drains (no new requests; forgotten once its requests in
flight are done).

Bad answers never stop routing: a seed that resolves to nothing (or fails to resolve) keeps its
last known addresses (at first, the seed URL itself), and the client logs that once per seed
until it resolves again. A name that answers a different subset on each lookup (DNS round robin
with truncated answers) only adds and drains replicas; the health probe and passive ejection deal
with addresses that do not answer.

The pure part is :func:`expand` and :class:`Discovery`'s bookkeeping; resolution is an injected
async function (the default asks the event loop's ``getaddrinfo``).

Example:
    >>> expand("http://tgi.default.svc:8080/v1", ["10.0.0.7", "fd00::2"])
    ['http://10.0.0.7:8080/v1', 'http://[fd00::2]:8080/v1']
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Discovery", "Resolver", "expand", "resolve_host"]

logger = logging.getLogger(__name__)

#: ``await resolver(host, port)`` -> the host's addresses (IPv4 / IPv6 literals)
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), in the resolver's order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in out:
            out.append(address)
    return out


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def expand(url: str, addresses: Sequence[str]) -> list[str]:
    """``url`` once per address, the host replaced (scheme, port and path kept), sorted
    as given, without duplicates."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port is not None else ""
    out: list[str] = []
    for address in addresses:
        host = f"[{address}]" if ":" in address else address
        expanded = urlunsplit(parts._replace(netloc=f"{host}{port}"))
        if expanded not in out:
            out.append(expanded)
    return out


class Discovery:
    """The seeds' current addresses; :meth:`refresh` re-resolves them.

    Args:
        seeds: the replica URLs the client was given.
        resolver: async ``(host, port) -> addresses``.

    Example:
        >>> async def fake(host, port): return ["127.0.0.2", "127.0.0.3"]
        >>> d = Discovery(["http://fleet:8080"], fake)
        >>> asyncio.run(d.refresh())
        ['http://127.0.0.2:8080', 'http://127.0.0.3:8080']
    """

    def __init__(self, seeds: Sequence[str], resolver: Resolver = resolve_host) -> None:
        self._resolver = resolver
        self._seeds: list[str] = []
        self._known: dict[str, list[str]] = {}
        self._warned: set[str] = set()
        for seed in seeds:
            host = urlsplit(seed).hostname or ""
            if urlsplit(seed).scheme != "http":
                # TLS checks the certificate against the host name: an address would fail it
                logger.warning("replica discovery skips %s: only http:// names are resolved", seed)
            elif not _is_ip(host):
                self._seeds.append(seed)
            self._known[seed] = [seed]

    @property
    def active(self) -> bool:
        """Whether any seed is a host name to resolve."""
        return bool(self._seeds)

    def urls(self) -> list[str]:
        """The replicas now: every seed's known addresses, in seed order."""
        out: list[str] = []
        for expansion in self._known.values():
            out.extend(u for u in expansion if u not in out)
        return out

    async def refresh(self, timeout: float = 5.0) -> list[str]:
        """Resolve every seed again and return :meth:`urls`. A seed whose lookup fails, times
        out or finds no address keeps its last known addresses (logged once until it resolves)."""
        results = await asyncio.gather(
            *(self._resolve(seed, timeout) for seed in self._seeds), return_exceptions=True
        )
        for seed, result in zip(self._seeds, results, strict=True):
            if isinstance(result, BaseException) or not result:
                if seed not in self._warned:
                    self._warned.add(seed)
                    why = f"{type(result).__name__}: {result}" if result else "no address"
                    logger.warning(
                        "replica discovery: %s did not resolve (%s); keeping %d known replica(s)",
                        seed,
                        why,
                        len(self._known[seed]),
                    )
                continue
            if seed in self._warned:
                self._warned.discard(seed)
                logger.info("replica discovery: %s resolves again", seed)
            self._known[seed] = expand(seed, result)
        return self.urls()

    async def _resolve(self, seed: str, timeout: float) -> Sequence[str]:
        parts = urlsplit(seed)
        port = parts.port or 80
        async with asyncio.timeout(timeout):
            return await self._resolver(parts.hostname or "", port)
