"""Which engine serves a replica, from a few safe GETs (pure: the caller does the requests).

The recipe (``/work/shared/engines/README.md``, "Detection recipe"): ``GET /v1/models`` usually
decides (its ``owned_by`` and llama.cpp's ``Server`` header); then ``GET /api/version`` (Ollama;
SGLang serves Ollama's ``/api/*`` routes but not this one), ``GET /version`` (vLLM, outside its
``--api-key``), ``GET /props`` (llama.cpp) and ``GET /info`` (TGI). ``GET /health`` is never
used: on SGLang it runs a generation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.tgi._errors import header_value
from tgispy.tgi._transport import HTTPResponse

__all__ = ["PROBES", "classify", "detected_engine", "fleet_engine", "mismatch", "probe_replica"]

logger = logging.getLogger(__name__)

#: the GETs tried in order, each relative to the replica's root URL
PROBES = ("/v1/models", "/api/version", "/version", "/props", "/info")

#: ``owned_by`` in ``/v1/models`` -> engine (vllm/entrypoints/serve/engine/protocol.py,
#: sglang openai/protocol.py ModelCard, llama.cpp server-context.cpp get_res_models)
_OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llamacpp"}


def _json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def classify(path: str, status: int, headers: Mapping[str, str], body: bytes | str) -> str | None:
    """The engine one probe's answer identifies, or ``None`` when it does not tell.

    Returns one of ``"vllm"``, ``"sglang"``, ``"llamacpp"``, ``"ollama"``, ``"tgi"``.

    Example:
        >>> classify("/v1/models", 200, {}, b'{"data":[{"id":"m","owned_by":"vllm"}]}')
        'vllm'
        >>> classify("/api/version", 200, {}, b'{"version":"0.32.15"}')
        'ollama'
    """
    server = header_value(headers, "server") or ""
    if server.startswith("llama.cpp"):
        return "llamacpp"  # every llama.cpp response carries it (server-http.cpp L180)
    if status != 200:
        return None
    data = _json(body)
    if not isinstance(data, Mapping):
        return None
    if path == "/v1/models":
        entries = data.get("data")
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], Mapping):
            return None
        first = entries[0]
        owner = first.get("owned_by")
        if isinstance(owner, str) and owner in _OWNERS:
            return _OWNERS[owner]
        if first.get("created") == 0 and owner == first.get("id"):
            return "tgi"  # TGI's /v1/models: owned_by is the model id, created 0
        return None
    if path == "/api/version" and isinstance(data.get("version"), str):
        return "ollama"
    if path == "/version" and isinstance(data.get("version"), str):
        return "vllm"
    if path == "/props" and "build_info" in data:
        return "llamacpp"
    if path == "/info" and "router" in data:
        return "tgi"
    return None


def detected_engine(found: str | None) -> str:
    """The dialect to speak for a detected engine (TGI's ``/v1`` and unknown servers speak the
    generic OpenAI dialect; client-side stop cutting makes TGI's kept stop strings agree).

    Example:
        >>> detected_engine("tgi"), detected_engine(None), detected_engine("sglang")
        ('openai', 'openai', 'sglang')
    """
    return "openai" if found in (None, "tgi") else found


def mismatch(declared: str, owners: list[str]) -> str | None:
    """Why a ``/v1/models`` answer contradicts the declared engine, or ``None``.

    Example:
        >>> mismatch("vllm", ["sglang"])
        "engine='vllm' was declared but the server's /v1/models says owned_by 'sglang' (sglang)"
    """
    engines = {_OWNERS[o] for o in owners if o in _OWNERS}
    if declared in _OWNERS.values() and engines and declared not in engines:
        found = ", ".join(sorted(engines))
        return (
            f"engine={declared!r} was declared but the server's /v1/models says owned_by "
            f"{', '.join(repr(o) for o in owners)} ({found})"
        )
    return None


async def probe_replica(
    get: Callable[[str, str], Awaitable[HTTPResponse]],
    url: str,
    *,
    answers: dict[tuple[str, str], HTTPResponse] | None = None,
) -> tuple[bool, str | None]:
    """Probe one replica with :data:`PROBES` (the I/O shell around :func:`classify`).

    ``get(url, path)`` does one GET. Returns whether the replica answered at all and the engine
    its answers identify (``None``: not recognised). ``answers``, when given, keeps every answer
    by ``(url, path)``, for a caller that reads ``/v1/models`` again for the replica's limits.
    """
    for path in PROBES:
        try:
            resp = await get(url, path)
        except Exception as exc:  # an unreachable replica tells nothing; the call will fail
            logger.info("engine probe GET %s%s failed: %s", url, path, exc)
            return path != PROBES[0], None
        if answers is not None:
            answers[url, path] = resp
        found = classify(path, resp.status, resp.headers, resp.body)
        if found is not None:
            return True, found
    return True, None


def fleet_engine(
    urls: Sequence[str], probes: Sequence[tuple[bool, str | None]]
) -> tuple[bool, str | None]:
    """The engine a fleet runs, from :func:`probe_replica`'s answer for each of ``urls``.

    Returns ``(decided, engine)``: ``decided`` is False when no replica answered (probe again
    later rather than guess for good); ``engine`` is ``None`` when none was recognised.

    Raises:
        ConfigError: the replicas run different engines (names each replica's).

    Example:
        >>> fleet_engine(["http://a", "http://b"], [(True, "vllm"), (True, None)])
        (True, 'vllm')
        >>> fleet_engine(["http://a"], [(False, None)])
        (False, None)
    """
    if not any(reached for reached, _ in probes):
        return False, None
    found = [engine for _, engine in probes]
    engines = {f for f in found if f is not None}
    if len(engines) > 1:
        each = ", ".join(f"{u}: {f or 'unknown'}" for u, f in zip(urls, found, strict=True))
        raise ConfigError(
            f"the replicas run different engines ({each}); pass engine= to name the dialect "
            "they all speak, or make one LM per engine"
        )
    return True, engines.pop() if engines else None
