"""What one ``FleetLM`` call sends and returns when the work done once is reused: the defaults
read at construction (and again after a change), the limits and model check once every replica
has answered (asked again for those that did not), and the single-reply answer."""

from __future__ import annotations

from typing import Any

import pytest

import tgispy as dspy
from tgispy.engines import _discovery
from tgispy.errors import ConfigError
from tgispy.lm._fleet import FleetLM, request_from_kwargs
from tgispy.testing import MockTransport, Recorded, Reply

from . import doubles

REPLICAS = ["http://r0.test:8000", "http://r1.test:8000"]


def echo(source: Any, body: dict[str, Any]) -> str:
    return "ok"


def posts(transport: MockTransport) -> list[Recorded]:
    return [r for r in transport.requests if r.method == "POST"]


def model_gets(transport: MockTransport, replica: str | None = None) -> int:
    return sum(
        1
        for r in transport.requests
        if r.method == "GET" and r.path == "/v1/models" and replica in (None, r.replica)
    )


def vllm(**defaults: Any) -> tuple[dspy.HFClientVLLM, MockTransport]:
    transport = MockTransport(doubles.vllm(echo))
    lm = dspy.HFClientVLLM(
        model="m", port=8000, url="http://vllm.test", cache=False, transport=transport, **defaults
    )
    return lm, transport


# ---- defaults read once, call kwargs merged over them --------------------------------------------
CALLS: list[dict[str, Any]] = [
    {},
    {"temperature": 0.7, "n": 2},
    {"num_predict": 5},  # max_tokens (a default) still wins, as in the merged kwargs
    {"max_tokens": None, "num_predict": 7},
    {"stop": ["\n\n", "Q:"], "min_p": 0.2, "seed": 3},
    {"repetition_penalty": 1.1, "route_key": "user-1", "cache": False},
    {"grammar": {"type": "json", "value": {"type": "object"}}},
    {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
]


@pytest.mark.parametrize("kwargs", CALLS)
def test_a_call_sends_what_its_merged_kwargs_say(kwargs: dict[str, Any]) -> None:
    lm, transport = vllm(max_tokens=40, stop="---", min_p=0.1, temperature=0.3, top_k=5)
    lm("Q:", **kwargs)
    merged = {**lm.kwargs, **kwargs}
    merged.pop("cache", None), merged.pop("route_key", None)
    expected = lm.dialect.build(request_from_kwargs("m", merged, prompt="Q:"))
    assert [(r.path, r.json) for r in posts(transport)] == [expected] * len(posts(transport))


def test_defaults_changed_after_construction_are_sent() -> None:
    lm, transport = vllm(stop=["A:"])
    lm("Q:")
    lm.kwargs["temperature"] = 0.5
    lm.kwargs["stop"].append("B:")  # changed in place
    lm.kwargs["min_p"] = 0.05
    lm("Q:")
    lm.kwargs["max_tokens"] = 150.0  # an equal value of another type is still read again
    with pytest.raises(ConfigError, match=r"max_tokens must be an integer, got 150\.0"):
        lm("Q:")
    first, second = (r.json for r in posts(transport))
    assert (first["temperature"], first["stop"], "min_p" in first) == (0.0, ["A:"], False)
    assert (second["temperature"], second["stop"], second["min_p"]) == (0.5, ["A:", "B:"], 0.05)
    lm.kwargs = {**lm.kwargs, "max_tokens": 9}  # replaced, as LM.copy() does
    lm("Q:")
    assert posts(transport)[-1].json["max_tokens"] == 9


def test_a_bad_default_set_later_fails_unless_the_call_overrides_it() -> None:
    lm, transport = vllm()
    lm.kwargs["top_k"] = "five"
    with pytest.raises(ConfigError, match="top_k must be an integer, got 'five'"):
        lm("Q:")
    assert lm("Q:", top_k=5) == ["ok"]
    assert [r.json["top_k"] for r in posts(transport)] == [5]
    lm.kwargs["top_k"] = 3
    lm("Q:")
    assert posts(transport)[-1].json["top_k"] == 3


def test_bad_call_kwargs_fail_with_the_first_check_in_order() -> None:
    lm, transport = vllm()
    with pytest.raises(ConfigError, match="stop must be"):
        lm("Q:", temperature="hot", stop=3)
    with pytest.raises(ConfigError, match="temperature must be a number"):
        lm("Q:", temperature="hot", seed=1.5)
    assert posts(transport) == []


# ---- limits and the model check: once every replica has answered --------------------------------
def test_limits_are_read_once_when_every_replica_answered() -> None:
    transport = MockTransport(doubles.vllm(echo))
    lm = FleetLM("m", urls=REPLICAS, engine="vllm", cache=False, transport=transport)
    for _ in range(5):
        assert lm("hi") == ["ok"]
    assert model_gets(transport) == 2


def test_a_replica_whose_limits_failed_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_discovery, "RETRY_AFTER_S", 0.0)  # ask again at once
    vllm_double = doubles.vllm(echo)
    broken = {"r1"}

    def handler(req: Recorded) -> Reply:
        if req.method == "GET" and "r1" in broken and "r1" in req.replica:
            return Reply(500, {"error": "starting"})
        return vllm_double(req)

    transport = MockTransport(handler)
    lm = FleetLM("m", urls=REPLICAS, engine="vllm", cache=False, transport=transport)
    for _ in range(3):
        assert lm("hi") == ["ok"]
    assert (model_gets(transport, REPLICAS[0]), model_gets(transport, REPLICAS[1])) == (1, 3)
    broken.clear()
    for _ in range(3):
        assert lm("hi") == ["ok"]
    assert (model_gets(transport, REPLICAS[0]), model_gets(transport, REPLICAS[1])) == (1, 4)


def test_the_model_is_checked_again_when_it_changes() -> None:
    lm, transport = vllm()
    assert lm("hi") == ["ok"]
    lm.model = "other"
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"serves \['m'\], not model='other'"):
            lm("hi")
    lm.model = "m"
    assert lm("hi") == ["ok"]
    assert len(posts(transport)) == 2 and model_gets(transport) == 1


# ---- one reply is the whole answer ---------------------------------------------------------------
def test_one_reply_gives_exactly_n_choices_and_its_usage() -> None:
    def two_choices(req: Recorded) -> Reply:
        return Reply(
            200,
            {
                "choices": [
                    {"index": 1, "text": "b", "finish_reason": "stop"},
                    {"index": 0, "text": "a", "finish_reason": "length"},
                ],
                "usage": {"total_tokens": 7, "prompt_tokens": 5, "completion_tokens": 2},
            },
        )

    transport = MockTransport(two_choices)
    lm = FleetLM("m", urls=REPLICAS[:1], engine="openai", cache=False, transport=transport)
    generation = lm._generate("Q:")
    assert generation == {"prompt": "Q:", "choices": [{"text": "a"}]}
    assert lm("Q:", n=2, temperature=0.5) == ["b"]  # only_completed drops the "length" one
    usage = lm.history[-1]["usage"]
    assert usage == {"completion_tokens": 2, "prompt_tokens": 5, "total_tokens": 7}
    assert list(usage) == sorted(usage)  # keyed in name order, as a sum over several requests
    assert lm.history[-1]["finish_reasons"] == ["length", "stop"]
