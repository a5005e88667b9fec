"""Server-reported load: where each engine says how busy it is, and pure parsers for it.

A replica's own count of queued and running requests includes every client of the fleet, so
routing by it lets load from other processes count (``RoutingPolicy(server_load=...)``). Each
parser takes the raw body and returns the number of requests queued plus running, or raises
:class:`LoadParseError` naming what it could not read; the poller in :mod:`._client` logs that
once per replica and routes on its own in-flight counts meanwhile.

========== =============== ===============================================================
engine     endpoint        what is read
========== =============== ===============================================================
tgi        ``/metrics``    ``tgi_queue_size`` + ``tgi_batch_current_size``
vllm       ``/metrics``    ``vllm:num_requests_waiting`` + ``vllm:num_requests_running``
llamacpp   ``/slots``      slots processing (``is_processing``, or ``state != 0``)
sglang     ``/get_load``   ``num_reqs`` (else running + waiting) summed over DP ranks
========== =============== ===============================================================

Example:
    >>> parse_tgi_metrics("tgi_queue_size 3\\ntgi_batch_current_size 2\\n")
    5.0
    >>> LOAD_SOURCES["llamacpp"].path
    '/slots'
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOAD_SOURCES",
    "LoadParseError",
    "LoadSource",
    "parse_llamacpp_slots",
    "parse_prometheus",
    "parse_sglang_load",
    "parse_tgi_metrics",
    "parse_vllm_metrics",
]

#: a load report larger than this is not believed (a parse gone wrong, not a real queue)
_MAX_LOAD = 1_000_000


class LoadParseError(ValueError):
    """A load report that could not be read (malformed, or without the expected fields)."""


@dataclass(frozen=True)
class LoadSource:
    """Where one engine reports its load, and how to read it."""

    path: str
    parse: Callable[[bytes], float]


def parse_prometheus(text: str, names: Iterable[str]) -> dict[str, float]:
    """Sum each wanted metric over its label sets in Prometheus' text format.

    Example:
        >>> parse_prometheus('a{m="x"} 1\\na{m="y"} 2.5\\n# HELP b\\nb 4', ["a", "c"])
        {'a': 3.5}
    """
    wanted = set(names)
    found: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        if brace >= 0:
            name = line[:brace]
            close = line.rfind("}")
            if close < brace:
                raise LoadParseError(f"unclosed labels in metrics line {line[:80]!r}")
            rest = line[close + 1 :].split()
        else:
            name, *rest = line.split()
        if name not in wanted:
            continue
        if not rest:
            raise LoadParseError(f"metric {name} has no value")
        try:
            value = float(rest[0])
        except ValueError:
            raise LoadParseError(
                f"metric {name} has a non-numeric value {rest[0][:40]!r}"
            ) from None
        found[name] = found.get(name, 0.0) + value
    return found


def _total(found: Mapping[str, float], names: Iterable[str], where: str) -> float:
    names = list(names)
    if not any(n in found for n in names):
        raise LoadParseError(f"{where} has none of {', '.join(names)}")
    return _checked(sum(found.get(n, 0.0) for n in names), where)


def _checked(value: float, where: str) -> float:
    if not math.isfinite(value) or value < 0 or value > _MAX_LOAD:
        raise LoadParseError(f"{where} reports an impossible load {value!r}")
    return value


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise LoadParseError("the metrics body is not UTF-8 text") from None


def parse_tgi_metrics(body: bytes | str) -> float:
    """Requests queued and in the running batch, from TGI's ``/metrics``.

    Example:
        >>> parse_tgi_metrics(b"tgi_batch_current_size 4\\n")
        4.0
    """
    text = body if isinstance(body, str) else _text(body)
    names = ("tgi_queue_size", "tgi_batch_current_size")
    return _total(parse_prometheus(text, names), names, "TGI /metrics")


def parse_vllm_metrics(body: bytes | str) -> float:
    """Requests waiting and running, from vLLM's ``/metrics`` (summed over models).

    Example:
        >>> parse_vllm_metrics('vllm:num_requests_running{model_name="m"} 2.0\\n'
        ...                    'vllm:num_requests_waiting{model_name="m"} 5.0')
        7.0
    """
    text = body if isinstance(body, str) else _text(body)
    names = ("vllm:num_requests_waiting", "vllm:num_requests_running")
    return _total(parse_prometheus(text, names), names, "vLLM /metrics")


def _json(body: bytes | str, where: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise LoadParseError(f"{where} is not JSON") from None


def parse_llamacpp_slots(body: bytes | str) -> float:
    """Slots processing a request, from llama.cpp's ``/slots``.

    Example:
        >>> parse_llamacpp_slots('[{"is_processing": true}, {"is_processing": false}]')
        1.0
    """
    slots = _json(body, "llama.cpp /slots")
    if not isinstance(slots, list) or not all(isinstance(s, dict) for s in slots):
        raise LoadParseError("llama.cpp /slots is not a list of slots")
    busy = 0
    for slot in slots:
        if isinstance(slot.get("is_processing"), bool):
            busy += slot["is_processing"]
        elif isinstance(slot.get("state"), int):
            busy += slot["state"] != 0
        else:
            raise LoadParseError("a llama.cpp slot has neither is_processing nor state")
    return float(busy)


def parse_sglang_load(body: bytes | str) -> float:
    """Requests in the scheduler, from SGLang's ``/get_load`` (summed over DP ranks).

    Example:
        >>> parse_sglang_load('[{"dp_rank": 0, "num_reqs": 3, "num_waiting_reqs": 1}]')
        3.0
    """
    data = _json(body, "SGLang /get_load")
    ranks = data.get("loads") if isinstance(data, dict) and "loads" in data else data
    if isinstance(ranks, dict):
        ranks = [ranks]
    if not isinstance(ranks, list) or not ranks or not all(isinstance(r, dict) for r in ranks):
        raise LoadParseError("SGLang /get_load is not a list of per-rank loads")
    total = 0.0
    for rank in ranks:
        value = rank.get("num_reqs")
        if not _is_number(value):
            parts = [rank.get("num_running_reqs"), rank.get("num_waiting_reqs")]
            if not any(_is_number(p) for p in parts):
                raise LoadParseError("an SGLang load has no num_reqs nor running / waiting counts")
            value = sum(p for p in parts if _is_number(p))
        total += value
    return _checked(float(total), "SGLang /get_load")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: each engine's load report
LOAD_SOURCES: dict[str, LoadSource] = {
    "tgi": LoadSource("/metrics", parse_tgi_metrics),
    "vllm": LoadSource("/metrics", parse_vllm_metrics),
    "llamacpp": LoadSource("/slots", parse_llamacpp_slots),
    "sglang": LoadSource("/get_load", parse_sglang_load),
}
