"""Prefix affinity: the routing key of a request, and consistent hashing with bounded load.

Pure and I/O-free. Every engine keeps a prefix (KV) cache per replica (TGI's prefix caching,
vLLM's automatic prefix caching, SGLang's radix cache, llama.cpp's slots), so requests that share
a long prefix are cheapest on the replica that already holds it. :func:`body_key` names that
shared prefix; :class:`HashRing` maps it to a home replica; :func:`bounded_choice` walks the ring
from the key's point to the first replica whose load stays within ``c`` times the average
(Mirrokni, Thorup and Zadimoghaddam, "Consistent hashing with bounded loads", 2018), so a hot
prefix spills to its second replica instead of overloading one.

The key (what "the same prefix" means) is engine-agnostic:

- **text prompts**: the prompt up to its last ``"\\n\\n---\\n\\n"``, DSPy's template separator.
  What comes before it is the instructions, the format and the demos (what every example of one
  program shares); what comes after it is the current example. A prompt without that separator
  has no known shared structure and gets no key (plain ``p2c``).
- **chat messages**: the system messages and the first user turn. For few-shot chat the first
  user turn is a demo (shared by every example of the program); for a multi-turn conversation it
  is the conversation's opening, which stays the same on every later turn, so the whole
  conversation keeps one home (the prefix the engine cached on the previous turn). A lone user
  turn is keyed by the text rule above, with the system messages.
- **an explicit key** (``route_key=`` per call, or :func:`route_key` around a block of calls)
  wins over both: session stickiness for multi-turn traffic whose prefix the client cannot see.

Example:
    >>> prompt_key("Answer questions.\\n\\n---\\n\\nQuestion: 1+1?\\nAnswer: 2"
    ...            "\\n\\n---\\n\\nQuestion: 2+2?")
    '2ae78b23fb36e370'
    >>> prompt_key("no template here") is None
    True
    >>> ring = HashRing(["http://a", "http://b"])
    >>> bounded_choice(ring, "2ae78b23fb36e370", {"http://a": 0, "http://b": 0}, 1.25)
    'http://a'
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

__all__ = [
    "SEPARATOR",
    "HashRing",
    "KeyHomes",
    "body_key",
    "bounded_choice",
    "current_route_key",
    "digest",
    "messages_key",
    "prompt_key",
    "route_key",
]

#: DSPy 2.4's template separator between instructions, format, demos and the current example
SEPARATOR = "\n\n---\n\n"

#: points per replica on the ring: enough that M keys split evenly in expectation
VNODES = 64

_ROUTE_KEY: ContextVar[str | None] = ContextVar("tgispy_route_key", default=None)


def digest(text: str) -> str:
    """A short stable hash of ``text`` (16 hex digits, the same in every process)."""
    from hashlib import blake2b  # here: only the "prefix" strategy hashes (hashlib ~2 ms import)

    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _point(text: str) -> int:
    from hashlib import blake2b

    return int.from_bytes(
        blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
    )


def prompt_key(prompt: str) -> str | None:
    """The routing key of a text prompt: a hash of everything before its last separator.

    Example:
        >>> hi, bye = "Be brief.\\n\\n---\\n\\nQ: hi", "Be brief.\\n\\n---\\n\\nQ: bye"
        >>> prompt_key(hi) == prompt_key(bye)
        True
        >>> prompt_key("Q: hi") is None
        True
    """
    cut = prompt.rfind(SEPARATOR)
    return digest(prompt[:cut]) if cut > 0 else None


def messages_key(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The routing key of chat messages: the system messages and the first user turn.

    A lone user turn (after any system messages) is keyed by :func:`prompt_key` of its text,
    with the system messages; ``None`` when nothing shared can be named.

    Example:
        >>> a = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
        ...      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]
        >>> later = a + [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "?"}]
        >>> messages_key(a) == messages_key(later)  # the conversation keeps its home
        True
    """
    head: list[Any] = []
    users = 0
    first_user: Mapping[str, Any] | None = None
    for m in messages:
        if not isinstance(m, Mapping):
            return None
        role = m.get("role")
        if role == "user":
            users += 1
            if first_user is None:
                first_user = m
        elif first_user is None and role == "system":
            head.append([role, m.get("content")])
    if first_user is None:
        return None
    content = first_user.get("content")
    if users == 1 and len(messages) == len(head) + 1:
        # a single turn: its text's template prefix (DSPy prompts sent as one user message)
        text_key = prompt_key(content) if isinstance(content, str) else None
        if text_key is None:
            return _canonical_key(head) if head else None
        head.append(["user-prefix", text_key])
        return _canonical_key(head)
    head.append(["user", content])
    return _canonical_key(head)


def _canonical_key(value: Any) -> str | None:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return digest(text)


def body_key(body: Mapping[str, Any]) -> str | None:
    """The routing key of a request body of any dialect (TGI, OpenAI, vLLM, SGLang, llama.cpp,
    Ollama): its text prompt (``inputs``, ``prompt``) or its ``messages``.

    Example:
        >>> body_key({"inputs": "I.\\n\\n---\\n\\nQ"}) == prompt_key("I.\\n\\n---\\n\\nQ")
        True
        >>> body_key({"parameters": {}}) is None
        True
    """
    for name in ("inputs", "prompt"):
        text = body.get(name)
        if isinstance(text, str):
            return prompt_key(text)
    messages = body.get("messages")
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        return messages_key(messages)
    return None


# ---- session stickiness ----------------------------------------------------------------------
@contextlib.contextmanager
def route_key(key: str | None) -> Iterator[None]:
    """Route every LM call in the block by ``key`` (a session or user id): the calls share a home
    replica, so multi-turn traffic finds its cached prefix. Needs ``strategy="prefix"``.

    Safe across threads and asyncio tasks (a ``ContextVar``); ``None`` clears it in the block.

    Example:
        >>> with route_key("user-42"):
        ...     current_route_key()
        'user-42'
        >>> current_route_key() is None
        True
    """
    if key is not None and not isinstance(key, str):
        raise TypeError(f"route_key must be a string or None, got {type(key).__name__}")
    token = _ROUTE_KEY.set(key)
    try:
        yield
    finally:
        _ROUTE_KEY.reset(token)


def current_route_key() -> str | None:
    """The key set by the innermost :func:`route_key` block, or ``None``."""
    return _ROUTE_KEY.get()


# ---- consistent hashing with bounded load ------------------------------------------------------
class HashRing:
    """Replicas at :data:`VNODES` pseudo-random points each on a 64-bit ring.

    A key's replicas, in order of preference, are the distinct replicas met walking clockwise
    from the key's own point. Adding or removing a replica moves only the keys whose walk meets
    it first (about ``1/n`` of them).

    Example:
        >>> ring = HashRing(["http://a", "http://b", "http://c"])
        >>> sorted(ring.walk("k")) == ["http://a", "http://b", "http://c"]
        True
    """

    __slots__ = ("_owners", "_points", "urls")

    def __init__(self, urls: Collection[str], vnodes: int = VNODES) -> None:
        self.urls = frozenset(urls)
        ring = sorted((_point(f"{url}#{i}"), url) for url in self.urls for i in range(vnodes))
        self._points = [p for p, _ in ring]
        self._owners = [u for _, u in ring]

    def walk(self, key: str) -> Iterator[str]:
        """The distinct replicas clockwise from ``key``'s point, the key's home first."""
        n = len(self._points)
        if not n:
            return
        start = bisect.bisect_left(self._points, _point(key))
        seen: set[str] = set()
        for i in range(n):
            url = self._owners[(start + i) % n]
            if url not in seen:
                seen.add(url)
                yield url
                if len(seen) == len(self.urls):
                    return


def load_bound(loads: Mapping[str, float], factor: float) -> float:
    """The most load one replica may carry after taking one more request: ``factor`` times the
    average load, that request included, rounded up (never below 1).

    Example:
        >>> load_bound({"a": 3, "b": 1}, 1.25)
        4
    """
    total = sum(loads.values()) + 1
    return max(math.ceil(factor * total / max(len(loads), 1)), 1)


def bounded_choice(
    ring: HashRing,
    key: str,
    loads: Mapping[str, float],
    factor: float,
    *,
    usable: Collection[str] | None = None,
) -> str | None:
    """The first replica on ``key``'s walk that is usable and stays within the load bound.

    Args:
        ring: the replicas' ring.
        key: the request's routing key.
        loads: the current load (requests in flight, or reported by the server) of each replica
            in rotation; the bound is ``factor`` times their average (:func:`load_bound`).
        factor: ``c`` of the bounded-load scheme (``> 1``; ``1.25`` keeps every replica within
            25% of the average).
        usable: the replicas that may take this request (default: every key of ``loads``).

    Returns:
        The replica's URL, or ``None`` when no usable replica is within the bound (the caller
        falls back to its load-balancing choice).
    """
    bound = load_bound(loads, factor)
    allowed = loads.keys() if usable is None else usable
    for url in ring.walk(key):
        if url in allowed and url in loads and loads[url] + 1 <= bound:
            return url
    return None


class KeyHomes:
    """Each routing key's home replica: sticky, and balanced by the number of keys.

    This is Mirrokni et al.'s scheme with the keys as the balls: a key met for the first time is
    homed at the first replica on its ring walk that holds fewer than its share of the live keys
    (``ceil(keys / replicas)``, the new one included), and keeps that home while it is used. So
    ``M`` prefixes over ``K`` replicas land ``M / K`` per replica, never the lopsided split plain
    hashing gives for a few keys (which would overflow one replica's prefix cache). A key unused
    for ``ttl`` seconds is forgotten (its program has finished) and stops counting; a key whose
    home left the set is homed again. A home that is merely ejected keeps its keys: they spill
    elsewhere meanwhile and come back with it.

    Example:
        >>> homes, ring = KeyHomes(), HashRing(["http://a", "http://b"])
        >>> placed = [homes.home(f"k{i}", ring, ring.urls, now=0.0) for i in range(6)]
        >>> sorted(homes.counts().values())
        [3, 3]
        >>> homes.home("k0", ring, ring.urls, now=1.0) == placed[0]
        True
    """

    __slots__ = ("_counts", "_table", "capacity", "ttl")

    def __init__(self, ttl: float = 600.0, capacity: int = 65536) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._table: dict[str, tuple[str, float]] = {}  # key -> (home, last use), oldest first
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._table)

    def counts(self) -> dict[str, int]:
        """Keys homed at each replica (replicas with none are left out)."""
        return {u: n for u, n in self._counts.items() if n}

    def _drop(self, key: str) -> None:
        url, _ = self._table.pop(key)
        self._counts[url] -= 1

    def _expire(self, now: float) -> None:
        table = self._table
        while table:
            key = next(iter(table))
            if now - table[key][1] <= self.ttl and len(table) <= self.capacity:
                return
            self._drop(key)

    def home(self, key: str, ring: HashRing, live: Collection[str], now: float) -> str | None:
        """``key``'s home among ``live`` replicas, homing it now if it has none (``None`` only
        when no replica is live)."""
        self._expire(now)
        entry = self._table.pop(key, None)
        if entry is not None:
            if entry[0] in live:
                self._table[key] = (entry[0], now)  # re-inserted: the newest entry
                return entry[0]
            self._counts[entry[0]] -= 1
        if not live:
            return None
        counts = self._counts
        share = math.ceil((sum(counts.get(u, 0) for u in live) + 1) / len(live))
        for url in ring.walk(key):
            if url in live and counts.get(url, 0) < share:
                counts[url] = counts.get(url, 0) + 1
                self._table[key] = (url, now)
                return url
        return None  # pragma: no cover - some live replica is always under its share
