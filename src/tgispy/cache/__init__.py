"""The LM call cache: request keys, a memory LRU, a private disk cache, and the two-tier LMCache.

The LM client builds a key from the full normalized request with :func:`cache_key` (never the
replica, auth headers or timeouts), looks it up in :class:`LMCache`, and stores only successful,
complete generations as JSON data.

Example:
    >>> from tgispy.cache import LMCache, MemoryCache, cache_key
    >>> cache = LMCache(memory=MemoryCache())
    >>> key = cache_key({"model": "m", "endpoint": "/generate", "body": {"inputs": "2+2="}})
    >>> cache.set(key, {"text": "4"})
    >>> cache.get(key)
    {'text': '4'}
"""

from tgispy._public import publish as _publish
from tgispy.cache._disk import CACHEDIR_ENV, DiskCache, default_cache_dir
from tgispy.cache._keys import cache_key, canonical_json
from tgispy.cache._lm_cache import LMCache
from tgispy.cache._memory import MemoryCache

__all__ = [
    "CACHEDIR_ENV",
    "DiskCache",
    "LMCache",
    "MemoryCache",
    "cache_key",
    "canonical_json",
    "default_cache_dir",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
