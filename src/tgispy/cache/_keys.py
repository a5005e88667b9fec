"""Cache keys and cached-value encoding: pure functions, no I/O.

A cache key is the SHA-256 of a canonical JSON text of the full normalized request. Two requests
that mean the same JSON get the same key: dict key order does not matter, ``1 == 1.0``, tuples and
lists are the same. Everything that changes what the server would generate changes the key.

What must never be part of a request handed to :func:`cache_key`: the replica (URL, port), auth
headers or tokens, and timeouts. They do not change the generation, and secrets must never reach a
cache key or a cache file. :func:`cache_key` refuses fields whose names carry secrets
(``authorization``, ``headers``, ``api_key``, ...) anywhere in the request, and transport-only
fields (``timeout``, ``replica``, ``url``, ``port``, ...) at the top level, so a caller that passes
too much fails loudly instead of leaking.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _ascii
from typing import Any

from tgispy._snapshot import flat_snapshot
from tgispy.errors import ConfigError

__all__ = ["cache_key", "canonical_json", "decode_value", "encode_value", "request_key"]

#: Bumped when the canonical form changes, so old disk entries become unreachable, not wrong.
_KEY_VERSION = b"tgispy-cache-key-v1\n"

#: Field names that carry credentials. Refused at any depth (compared lower-case, ``-`` as ``_``).
_SECRET_FIELDS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "headers",
        "cookie",
        "set_cookie",
        "api_key",
        "x_api_key",
        "hf_token",
        "password",
    }
)

#: Transport-only fields: they never change a generation, so they must not split the cache.
_TRANSPORT_FIELDS = frozenset(
    {"timeout", "replica", "replicas", "url", "port", "auth", "verify", "http_request_kwargs"}
)

#: In a JSON schema (a ``grammar`` or chat ``tools``), the keys of these mappings are names the
#: user chose (a tool parameter may well be called ``headers``), not HTTP fields.
_SCHEMA_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


# Built once: json.dumps with options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def _field_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


#: A request path, for messages only: () at the top, else (parent path, name).
_Path = tuple[Any, ...]

#: (field name, at the top level) pairs already checked and fine: most requests reuse a few names.
_FINE_NAMES: set[tuple[str, bool]] = set()
_FINE_NAMES_MAX = 4096


def _where(path: _Path) -> str:
    parts: list[str] = []
    while path:
        path, name = path
        parts.append(name)
    return ".".join(reversed(parts)) if parts else "the request"


def _normalize(value: Any, path: _Path, names_are_user_data: bool) -> Any:
    kind = type(value)
    # Exact str, int, bool and None are already canonical (the common case, checked first).
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        out: dict[str, Any] = {}
        top = not path
        for name, item in value.items():
            if type(name) is not str and not isinstance(name, str):
                raise ConfigError(
                    f"cache_key: {_where(path)} has a {type(name).__name__} key {name!r}; "
                    "JSON object keys must be strings."
                )
            if not names_are_user_data and (name, top) not in _FINE_NAMES:
                _check_field_name(name, path)
                if len(_FINE_NAMES) < _FINE_NAMES_MAX:
                    _FINE_NAMES.add((str(name), top))
            out[name] = _normalize(item, (path, name), name in _SCHEMA_NAME_MAPS)
        return out
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return [_normalize(item, (path, str(i)), False) for i, item in enumerate(value)]
    # bool before int: True is an int in Python, but `true` and `1` are different JSON values.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(
                f"cache_key: {_where(path)} is {value!r}; a cacheable request holds only finite "
                "numbers (TGI rejects NaN and infinity too)."
            )
        # 1.0 and 1 are the same JSON number; integral floats become ints (not the reverse, which
        # would merge distinct large seeds).
        return int(value) if value.is_integer() else float(value)
    if isinstance(value, str):
        return str(value)
    raise ConfigError(
        f"cache_key: {_where(path)} is a {type(value).__name__}, which is not a JSON value; pass "
        "only dicts, lists, strings, numbers, booleans and None (convert it before the call)."
    )


def _is_canonical(value: Any, top: bool, names_are_user_data: bool) -> bool:
    """Whether ``value`` is already in canonical form (so :func:`_normalize` would copy it as is).

    Exact JSON types only, field names already checked, no integral or non-finite floats: the
    common request, which can then be encoded without building a normalized copy.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        for name, item in value.items():
            if type(name) is not str or (
                not names_are_user_data and (name, top) not in _FINE_NAMES
            ):
                return False
            if not _is_canonical(item, False, name in _SCHEMA_NAME_MAPS):
                return False
        return True
    if kind is list:
        return all(_is_canonical(item, False, False) for item in value)
    if kind is float:
        return math.isfinite(value) and not value.is_integer()
    return False


def _check_field_name(name: str, path: _Path) -> None:
    field = _field_name(name)
    if field in _SECRET_FIELDS:
        # Name the path, never the value: the value is the secret.
        raise ConfigError(
            f"cache_key: refusing a field named {name!r} at {_where((path, name))}: credentials "
            "must never be part of a cache key. Pass only the model, endpoint and request body; "
            "auth headers belong to the transport."
        )
    if not path and field in _TRANSPORT_FIELDS:
        raise ConfigError(
            f"cache_key: refusing the top-level field {name!r}: replicas, ports, auth and "
            "timeouts do not change a generation and must not be part of a cache key. Pass only "
            "the model, endpoint and request body."
        )


def canonical_json(request: Mapping[str, Any]) -> str:
    """Return the canonical JSON text of ``request`` that :func:`cache_key` hashes.

    Sorted keys, no whitespace, ASCII only, integral floats written as ints, tuples as lists.

    Raises:
        ConfigError: ``request`` is not a mapping, holds a non-JSON value, NaN or infinity, a
            non-string object key, a credential field, or a top-level transport field.

    Example:
        >>> canonical_json({"b": 1.0, "a": (1, 2.5)})
        '{"a":[1,2.5],"b":1}'
    """
    if not isinstance(request, Mapping):
        raise ConfigError(
            "cache_key: expected a mapping such as "
            f"{{'model': ..., 'endpoint': ..., 'body': ...}}, got {type(request).__name__}."
        )
    try:
        normalized = (
            request if _is_canonical(request, True, False) else _normalize(request, (), False)
        )
    except RecursionError:
        raise ConfigError(
            "cache_key: the request nests too deeply or contains a reference cycle."
        ) from None
    return _CANONICAL.encode(normalized)


def cache_key(request: Mapping[str, Any]) -> str:
    """Return the cache key of a normalized LM request: a 64-character SHA-256 hex digest.

    Pass everything that decides the generation and nothing else, typically
    ``{"model": ..., "endpoint": "/generate" or "chat", "body": <the exact TGI request body>}``.
    Do NOT include the replica (URL, port), auth headers or tokens, or timeouts: the same
    request sent to another replica, with another token or another timeout, is the same
    generation. Credential-named fields are refused at any depth, transport fields at the top.

    Args:
        request: a mapping of JSON values (dicts, lists or tuples, str, int, float, bool, None).

    Returns:
        The hex digest; equal for requests that are equal as JSON values.

    Raises:
        ConfigError: see :func:`canonical_json`.

    Example:
        >>> body = {"inputs": "Hi", "parameters": {"max_new_tokens": 5, "temperature": 1.0}}
        >>> a = cache_key({"model": "smollm2", "endpoint": "/generate", "body": body})
        >>> body2 = {"parameters": {"temperature": 1, "max_new_tokens": 5}, "inputs": "Hi"}
        >>> a == cache_key({"endpoint": "/generate", "body": body2, "model": "smollm2"})
        True
    """
    text = canonical_json(request)
    return hashlib.sha256(_KEY_VERSION + text.encode("ascii")).hexdigest()


#: canonical JSON texts of recently keyed body values (a program's settings, the same call after
#: call), by a typed snapshot of the value
_PARTS: dict[tuple[Any, ...], str] = {}
_PARTS_MAX = 256


def request_key(model: str, endpoint: str, body: Mapping[str, Any]) -> str:
    """``cache_key({"model": model, "endpoint": endpoint, "body": body})``, computed faster.

    The key an LM computes for every call: the body's strings (the prompt) are encoded as they
    are, and the canonical text of its other values (the generation settings, the same call after
    call) is remembered, so only the first call with given settings walks and checks them.

    Raises:
        ConfigError: as :func:`cache_key`.

    Example:
        >>> body = {"inputs": "Hi", "parameters": {"max_new_tokens": 5}}
        >>> request_key("m", "/generate", body) == cache_key(
        ...     {"model": "m", "endpoint": "/generate", "body": body})
        True
    """
    if type(model) is not str or type(endpoint) is not str or type(body) is not dict:
        return cache_key({"model": model, "endpoint": endpoint, "body": body})
    texts: dict[str, str] = {}
    # In the body's order, as cache_key walks it (the first bad value is the one reported).
    for name, value in body.items():
        if (name, False) not in _FINE_NAMES:  # a name not checked yet: the full path checks it
            return cache_key({"model": model, "endpoint": endpoint, "body": body})
        if type(value) is str:
            text = _ascii(value)
        else:
            snap = flat_snapshot(value) if type(value) is dict else None
            cached = _PARTS.get(snap) if snap is not None else None
            if cached is None:
                path: _Path = (((), "body"), name)
                try:
                    canonical = _is_canonical(value, False, name in _SCHEMA_NAME_MAPS)
                    text = _CANONICAL.encode(
                        value if canonical else _normalize(value, path, name in _SCHEMA_NAME_MAPS)
                    )
                except RecursionError:
                    raise ConfigError(
                        "cache_key: the request nests too deeply or contains a reference cycle."
                    ) from None
                if snap is not None:
                    if len(_PARTS) >= _PARTS_MAX:
                        _PARTS.clear()
                    _PARTS[snap] = text
            else:
                text = cached
        texts[name] = text
    text = (
        '{"body":{'
        + ",".join(_ascii(name) + ":" + texts[name] for name in sorted(texts))
        + '},"endpoint":'
        + _ascii(endpoint)
        + ',"model":'
        + _ascii(model)
        + "}"
    )
    return hashlib.sha256(_KEY_VERSION + text.encode("ascii")).hexdigest()


def encode_value(value: Any) -> str:
    """Encode a value to cache as JSON text, refusing what must not be cached.

    Raises:
        ConfigError: ``value`` is an exception (errors are never cached), None (it would read
            back as a miss), or not JSON-serializable.
    """
    if isinstance(value, BaseException) or (
        isinstance(value, type) and issubclass(value, BaseException)
    ):
        raise ConfigError(
            f"refusing to cache an error ({type(value).__name__}): errors are never cached, so a "
            "retry can succeed. Cache only successful generations."
        )
    if value is None:
        raise ConfigError("refusing to cache None: a cache returns None for a miss.")
    try:
        return _COMPACT.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"cache values must be JSON-serializable (dicts, lists, str, numbers, bool): {exc}. "
            "Convert the value to plain JSON data before caching it."
        ) from None


def decode_value(text: str) -> Any:
    """Decode JSON text written by :func:`encode_value` (raises ValueError if it is not JSON)."""
    return json.loads(text)
