"""ServerInfo from /info bodies of every TGI era."""

from __future__ import annotations

import pytest

from tgispy.errors import MalformedResponseError
from tgispy.tgi import ServerInfo

from ._data import load_json, protocol_facts

LAUNCHER = protocol_facts()["info"]["launcher_defaults"]


def info_3x() -> dict[str, object]:
    return {
        "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "model_sha": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": LAUNCHER["max_concurrent_requests"],
        "max_best_of": LAUNCHER["max_best_of"],
        "max_stop_sequences": LAUNCHER["max_stop_sequences"],
        "max_input_tokens": 4095,
        "max_total_tokens": 4096,
        "validation_workers": 2,
        "max_client_batch_size": LAUNCHER["max_client_batch_size"],
        "router": "text-generation-router",
        "version": "3.3.6-dev0",
        "sha": None,
        "docker_label": None,
    }


def test_from_3x_info() -> None:
    info = ServerInfo.from_json(info_3x())
    assert info == ServerInfo(
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        version="3.3.6-dev0",
        max_input_tokens=4095,
        max_total_tokens=4096,
        max_best_of=2,
        max_stop_sequences=4,
        max_concurrent_requests=128,
        max_client_batch_size=4,
        model_pipeline_tag="text-generation",
    )
    assert info.version_tuple == (3, 3, 6)
    assert info.supports_grammar and info.supports_chat and info.supports_frequency_penalty


def test_from_0_9_info_reads_max_input_length() -> None:
    fields = protocol_facts()["info"]["fields_0_9"]
    body = dict.fromkeys(fields, 1) | {"version": "0.9.4", "model_id": "bigscience/bloom"}
    body["max_input_length"] = 1000
    info = ServerInfo.from_json(body)
    assert info.max_input_tokens == 1000 and info.max_client_batch_size is None
    assert info.version_tuple == (0, 9, 4)
    assert not info.supports_chat and not info.supports_grammar
    assert not info.supports_frequency_penalty and not info.supports_adapters


def test_schema_example_info_parses() -> None:
    """Every Info property of each OpenAPI era is read without error."""
    for name in ("openapi-v0.9.4.json", "openapi-v1.4.5.json", "openapi.json"):
        props = load_json(name)["components"]["schemas"]["Info"]["properties"]
        body = {key: (2 if spec.get("type") == "integer" else "x") for key, spec in props.items()}
        body["version"] = "1.4.5"
        info = ServerInfo.from_json(body)
        assert info.max_total_tokens == 2 and info.version == "1.4.5"


@pytest.mark.parametrize(
    ("version", "expected", "grammar", "chat", "frequency_penalty"),
    [
        ("1.3.4", (1, 3, 4), False, False, False),
        ("1.4.0", (1, 4, 0), False, True, False),
        ("1.4.1", (1, 4, 1), True, True, True),
        ("2.0", (2, 0, 0), True, True, True),
        ("v2.4.1", (2, 4, 1), True, True, True),
        ("3.3.6-dev0", (3, 3, 6), True, True, True),
        ("unknown", None, True, True, True),  # an unreadable version is not enforced
        (None, None, True, True, True),
    ],
)
def test_version_gates(
    version: str | None,
    expected: tuple[int, int, int] | None,
    grammar: bool,
    chat: bool,
    frequency_penalty: bool,
) -> None:
    info = ServerInfo(version=version)
    assert info.version_tuple == expected
    assert (info.supports_grammar, info.supports_chat, info.supports_frequency_penalty) == (
        grammar,
        chat,
        frequency_penalty,
    )


def test_tolerates_missing_extra_and_mistyped_keys() -> None:
    info = ServerInfo.from_json({"max_best_of": True, "max_total_tokens": "4096", "new": 1})
    assert info == ServerInfo()


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_non_object_is_malformed(body: object) -> None:
    with pytest.raises(MalformedResponseError):
        ServerInfo.from_json(body)  # type: ignore[arg-type]
