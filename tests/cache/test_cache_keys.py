"""Cache keys: stability, sensitivity to every field, canonical equality, and refusal of secrets."""

from __future__ import annotations

import copy
import decimal
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgispy.cache import cache_key, canonical_json
from tgispy.cache._keys import _SECRET_FIELDS, decode_value, encode_value
from tgispy.errors import ConfigError

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def generate_request() -> dict[str, Any]:
    """A realistic, full /generate request with every parameter tgispy may send."""
    return {
        "model": MODEL,
        "endpoint": "/generate",
        "body": {
            "inputs": "Question: What is 2+2?\nAnswer:",
            "parameters": {
                "max_new_tokens": 75,
                "do_sample": True,
                "temperature": 0.7,
                "top_p": 0.97,
                "top_k": 50,
                "seed": 42,
                "stop": ["\n", "\n\n"],
                "best_of": 2,
                "details": True,
                "repetition_penalty": 1.1,
                "frequency_penalty": 0.2,
                "truncate": 1000,
                "typical_p": 0.9,
                "watermark": False,
                "return_full_text": False,
                "decoder_input_details": False,
                "top_n_tokens": 3,
                "adapter_id": "my-lora",
                "grammar": {
                    "type": "json",
                    "value": {
                        "type": "object",
                        "properties": {"answer": {"type": "string"}},
                        "required": ["answer"],
                    },
                },
            },
        },
    }


def chat_request() -> dict[str, Any]:
    return {
        "model": MODEL,
        "endpoint": "chat",
        "body": {
            "model": "tgi",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "max_tokens": 20,
            "temperature": 0.5,
        },
    }


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*path, i))]
    return [path]


def mutated(request: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = copy.deepcopy(request)
    target = out
    for part in path[:-1]:
        target = target[part]
    old = target[path[-1]]
    if isinstance(old, bool):
        new: Any = not old
    elif isinstance(old, int | float):
        new = old + 1
    else:
        new = old + "x"
    target[path[-1]] = new
    return out


def reorder(value: Any) -> Any:
    """Same JSON value: dict keys reversed, lists as tuples, integral numbers as floats."""
    if isinstance(value, dict):
        return {k: reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return tuple(reorder(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return float(value)
    return value


# --- stability -------------------------------------------------------------------------------


def test_key_is_a_sha256_hex_digest_and_deterministic() -> None:
    key = cache_key(generate_request())
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert cache_key(generate_request()) == key


def test_canonical_text_is_sorted_compact_ascii() -> None:
    text = canonical_json({"b": 1.0, "a": (1, 2.5, "é"), "c": {"z": None, "y": True}})
    assert text == '{"a":[1,2.5,"\\u00e9"],"b":1,"c":{"y":true,"z":null}}'


def test_key_format_is_pinned() -> None:
    # A change here silently invalidates every user's disk cache: bump _KEY_VERSION on purpose.
    request = {"model": "m", "endpoint": "/generate", "body": {"inputs": "Hi"}}
    expected_text = '{"body":{"inputs":"Hi"},"endpoint":"/generate","model":"m"}'
    assert canonical_json(request) == expected_text
    expected = hashlib.sha256(b"tgispy-cache-key-v1\n" + expected_text.encode()).hexdigest()
    assert cache_key(request) == expected
    assert cache_key(request) == "c19917f16338005526a51da2a053ece8b1ce6560603266a55b0b99c70b3f1998"


# --- sensitivity -----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [generate_request, chat_request])
def test_every_field_changes_the_key(make: Callable[[], dict[str, Any]]) -> None:
    request = make()
    paths = leaf_paths(request)
    assert len(paths) >= 7
    keys = {cache_key(request)}
    for path in paths:
        keys.add(cache_key(mutated(request, path)))
    # every mutation gave a key different from the original and from every other mutation
    assert len(keys) == len(paths) + 1


def test_removing_or_adding_a_parameter_changes_the_key() -> None:
    request = generate_request()
    base = cache_key(request)
    for name in list(request["body"]["parameters"]):
        smaller = copy.deepcopy(request)
        del smaller["body"]["parameters"][name]
        assert cache_key(smaller) != base, name
    explicit_none = copy.deepcopy(request)
    explicit_none["body"]["parameters"]["new_param"] = None
    assert cache_key(explicit_none) != base


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (True, 1),
        (False, 0),
        ("1", 1),
        (None, 0),
        (None, "null"),
        ([1, 2], [2, 1]),
        ([], {}),
        (0.1, 0.10000000000000002),
        (2**64 - 1, 2**64 - 2),
        ("a", "A"),
        ("\n", "\n\n"),
    ],
)
def test_distinct_json_values_give_distinct_keys(a: Any, b: Any) -> None:
    assert cache_key({"body": {"v": a}}) != cache_key({"body": {"v": b}})


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (0, -0.0),
        (-3, -3.0),
        (1e20, 100000000000000000000),
        ([1, "x"], (1, "x")),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({"x": [{"p": 1, "q": 2}]}, {"x": ({"q": 2.0, "p": 1.0},)}),
    ],
)
def test_equal_json_values_give_equal_keys(a: Any, b: Any) -> None:
    assert cache_key({"body": {"v": a}}) == cache_key({"body": {"v": b}})


def test_dict_key_order_does_not_matter_at_any_depth() -> None:
    request = generate_request()
    assert cache_key(reorder(request)) == cache_key(request)
    assert cache_key(reorder(chat_request())) == cache_key(chat_request())


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1, 2}, "set"),
        (b"bytes", "bytes"),
        (object(), "object"),
        (decimal.Decimal("1.5"), "Decimal"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "inf"),
    ],
)
def test_non_json_values_are_refused_naming_the_path(value: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        cache_key({"body": {"parameters": {"odd": value}}})
    message = str(info.value)
    assert "body.parameters.odd" in message
    assert fragment in message


def test_non_string_object_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="keys must be strings"):
        cache_key({"body": {1: "one"}})


def test_non_mapping_request_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        cache_key(["model", "m"])  # type: ignore[arg-type]


def test_cycles_are_refused() -> None:
    body: dict[str, Any] = {}
    body["self"] = body
    with pytest.raises(ConfigError, match="cycle"):
        cache_key({"body": body})


SECRET = "hf_SECRETsecretSECRET"


@pytest.mark.parametrize(
    "request_",
    [
        {"authorization": f"Bearer {SECRET}", "body": {}},
        {"Authorization": f"Bearer {SECRET}", "body": {}},
        {"headers": {"Authorization": f"Bearer {SECRET}"}, "body": {}},
        {"body": {"inputs": "x", "headers": {"X-Trace": SECRET}}},
        {"body": {"parameters": {"authorization": SECRET}}},
        {"body": {"messages": [{"role": "user", "content": "hi", "AUTHORIZATION": SECRET}]}},
        {"body": {"parameters": {"X-API-Key": SECRET}}},
        {"body": {"hf_token": SECRET}},
        {"body": {"Proxy-Authorization": SECRET}},
    ],
)
def test_credential_fields_are_refused_anywhere_without_echoing_them(
    request_: dict[str, Any],
) -> None:
    with pytest.raises(ConfigError, match="credentials must never be part of a cache key") as info:
        cache_key(request_)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


@pytest.mark.parametrize("name", ["timeout", "replica", "url", "port", "auth", "Timeout"])
def test_transport_fields_are_refused_at_the_top_level(name: str) -> None:
    with pytest.raises(ConfigError, match="must not be part of a cache key"):
        cache_key({"model": "m", name: "x", "body": {}})


def test_transport_names_inside_the_body_are_data() -> None:
    # An image URL inside chat messages is part of the prompt, not the replica.
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "a"}}]}]
    a = cache_key({"model": "m", "endpoint": "chat", "body": {"messages": messages}})
    messages[0]["content"][0]["image_url"]["url"] = "b"  # type: ignore[index]
    assert cache_key({"model": "m", "endpoint": "chat", "body": {"messages": messages}}) != a


def test_schema_property_names_are_user_data_not_http_fields() -> None:
    # A tool or grammar may well have a parameter called "headers" or "authorization".
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"headers": {"type": "object"}, "authorization": {"type": "string"}},
        "$defs": {"Headers": {"type": "object"}},
        "required": ["headers"],
    }
    key = cache_key({"body": {"parameters": {"grammar": {"type": "json", "value": schema}}}})
    assert len(key) == 64
    # ...but the property's own schema is checked again.
    schema["properties"]["headers"] = {"type": "object", "headers": {"Authorization": SECRET}}
    with pytest.raises(ConfigError):
        cache_key({"body": {"parameters": {"grammar": {"type": "json", "value": schema}}}})


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [ValueError("boom"), ConfigError("x"), KeyboardInterrupt(), RuntimeError]
)
def test_errors_are_never_encoded(value: Any) -> None:
    with pytest.raises(ConfigError, match="errors are never cached"):
        encode_value(value)


@pytest.mark.parametrize("value", [{"error": ValueError("x")}, {1, 2}, {"b": b"x"}, object()])
def test_non_json_values_are_not_encoded(value: Any) -> None:
    with pytest.raises(ConfigError, match="JSON-serializable"):
        encode_value(value)


def test_none_is_not_encoded() -> None:
    with pytest.raises(ConfigError, match="None"):
        encode_value(None)


def test_value_round_trip() -> None:
    value = {"prompt": "p", "choices": [{"text": "é\udcff"}], "usage": {"n": 3}, "lp": -1.5}
    assert decode_value(encode_value(value)) == value


# --- properties ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            # credential-named fields are refused by design (tested above)
            st.text(max_size=8).filter(
                lambda k: k.strip().lower().replace("-", "_") not in _SECRET_FIELDS
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@given(json_values)
def test_equal_json_values_always_give_equal_keys(value: Any) -> None:
    key = cache_key({"body": value})
    assert cache_key({"body": json.loads(json.dumps(value))}) == key
    assert cache_key({"body": reorder(value)}) == key
    assert cache_key({"body": copy.deepcopy(value)}) == key


@given(json_values)
def test_canonical_text_parses_back_to_an_equal_value(value: Any) -> None:
    parsed = json.loads(canonical_json({"body": value}))["body"]
    assert parsed == value
    assert canonical_json({"body": parsed}) == canonical_json({"body": value})


@given(json_values, json_values)
def test_keys_differ_when_canonical_texts_differ(a: Any, b: Any) -> None:
    same_text = canonical_json({"body": a}) == canonical_json({"body": b})
    assert (cache_key({"body": a}) == cache_key({"body": b})) == same_text


# ---- request_key: the per-call fast path must be cache_key exactly ----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tgispy.cache._keys import request_key  # noqa: E402

_names = st.sampled_from(
    ["inputs", "parameters", "stop", "temperature", "n", "grammar", "properties", "api_key", "url"]
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(_names, inner, max_size=3)
    ),
    max_leaves=8,
)


def _both(model: str, endpoint: str, body: dict[str, object]) -> tuple[str, str]:
    try:
        expected = cache_key({"model": model, "endpoint": endpoint, "body": body})
    except ConfigError as exc:
        with pytest.raises(ConfigError) as fast:
            request_key(model, endpoint, body)
        assert str(fast.value) == str(exc)
        return "error", "error"
    return expected, request_key(model, endpoint, body)


@settings(max_examples=300, deadline=None)
@given(
    model=st.text(max_size=8),
    endpoint=st.sampled_from(["/generate", "/v1/chat/completions#0"]),
    body=st.dictionaries(_names, _values, max_size=4),
)
def test_request_key_is_cache_key(model: str, endpoint: str, body: dict[str, object]) -> None:
    expected, fast = _both(model, endpoint, body)
    assert fast == expected
    expected, again = _both(model, endpoint, body)  # the second call reads remembered parts
    assert again == expected


def test_request_key_remembered_settings_do_not_merge_different_ones() -> None:
    params = {"do_sample": False, "max_new_tokens": 5, "stop": ["\n"]}
    a = request_key("m", "/generate", {"inputs": "Hi", "parameters": params})
    b = request_key("m", "/generate", {"inputs": "Hi", "parameters": {**params, "stop": ["x"]}})
    c = request_key("m", "/generate", {"inputs": "Hi", "parameters": {**params, "seed": 1}})
    d = request_key("m", "/generate", {"inputs": "Hi", "parameters": dict(params)})
    assert len({a, b, c}) == 3
    assert (
        a
        == d
        == cache_key(
            {"model": "m", "endpoint": "/generate", "body": {"inputs": "Hi", "parameters": params}}
        )
    )
    # integral floats are ints in the canonical form, remembered or not
    e = request_key("m", "/generate", {"inputs": "Hi", "parameters": {"temperature": 1.0}})
    f = request_key("m", "/generate", {"inputs": "Hi", "parameters": {"temperature": 1}})
    assert e == f
