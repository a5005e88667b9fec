"""What each replica says about itself (limits discovery): the I/O shell around the dialects'
pure ``parse_limits``, shared by the engine clients (FleetLM) and the DSPy 3 engine."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from tgispy.engines._detect import mismatch
from tgispy.engines._dialect import Dialect, Limits
from tgispy.errors import ConfigError
from tgispy.tgi._transport import HTTPResponse

__all__ = ["RETRY_AFTER_S", "ReplicaLimits"]

logger = logging.getLogger(__name__)

#: a replica whose limits could not be read is asked again after this long
RETRY_AFTER_S = 30.0

Get = Callable[[str, str], Awaitable[HTTPResponse]]


class ReplicaLimits:
    """Each replica's answer to ``GET dialect.limits_path``, asked once per replica.

    Discovery is best effort: a replica that fails is asked again after :data:`RETRY_AFTER_S`,
    and requests go out meanwhile. A ``/v1/models`` whose ``owned_by`` contradicts the declared
    engine is an error for this and every later call.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._known: dict[str, Limits] = {}
        self._failed_at: dict[str, float] = {}
        self._mismatch: str | None = None

    def complete(self, urls: Sequence[str]) -> bool:
        """Whether every replica in ``urls`` has answered (nothing is left to ask)."""
        return all(u in self._known for u in urls)

    async def update(
        self,
        get: Get,
        dialect: Dialect,
        urls: Sequence[str],
        *,
        answers: dict[tuple[str, str], HTTPResponse] | None = None,
    ) -> list[Limits]:
        """Ask the replicas that are due; return the limits of every replica that answered.

        ``get(url, path)`` does one GET; ``answers`` holds responses already received (engine
        detection's ``/v1/models``), used once instead of asking again.

        Raises:
            ConfigError: a replica's ``/v1/models`` says it runs another engine than declared.
        """
        path = dialect.limits_path
        if path is None:
            return []
        now = self._clock()
        due = [
            u
            for u in urls
            if u not in self._known
            and now - self._failed_at.get(u, -RETRY_AFTER_S) >= RETRY_AFTER_S
        ]
        if due:
            await asyncio.gather(*(self._fetch(get, dialect, u, path, answers) for u in due))
        if self._mismatch is not None:
            raise ConfigError(self._mismatch + "; pass the right engine= (or engine='auto')")
        return list(self._known.values())

    async def _fetch(
        self,
        get: Get,
        dialect: Dialect,
        url: str,
        path: str,
        answers: dict[tuple[str, str], HTTPResponse] | None,
    ) -> None:
        try:
            kept = answers.pop((url, path), None) if answers is not None else None
            resp = kept or await get(url, path)
            if resp.status != 200:
                raise dialect.error(resp.status, resp.body, replica=url)
            limits = dialect.parse_limits(resp.body)
        except Exception as exc:  # discovery is best effort: requests still go out
            logger.info(
                "GET %s%s failed (%s); asked again in %.0f s, requests go out meanwhile",
                url,
                path,
                exc,
                RETRY_AFTER_S,
            )
            self._failed_at[url] = self._clock()
            return
        self._known[url] = limits
        owners = limits.extra.get("owned_by")
        if isinstance(owners, list):
            self._mismatch = mismatch(dialect.name, owners)
