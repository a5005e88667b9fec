"""DSPy / OpenAI-style kwargs -> TGI request bodies: mapping rules and client-side checks."""

from __future__ import annotations

from typing import Any

import pytest

from tgispy.errors import ConfigError, InvalidRequestError
from tgispy.tgi import (
    CLIENT_ONLY_KEYS,
    GENERATE_KEYS,
    ServerInfo,
    build_chat_request,
    build_generate_request,
    generation_parameters,
)

INFO = ServerInfo(
    version="3.3.6-dev0",
    max_input_tokens=4095,
    max_total_tokens=4096,
    max_best_of=2,
    max_stop_sequences=4,
)
OLD = ServerInfo(version="1.3.4")
USER = [{"role": "user", "content": "Hi"}]


def params(**kwargs: Any) -> dict[str, Any]:
    return generation_parameters(kwargs)


def rejects(match: str, _info: ServerInfo | None = None, **kwargs: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError, match=match) as raised:
        generation_parameters(kwargs, info=_info)
    return raised.value


# ---- greedy vs sampling ------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [None, 0, 0.0, "absent"])
def test_greedy_sends_no_sampling_knobs(temperature: Any) -> None:
    kwargs: dict[str, Any] = {"max_tokens": 10, "top_p": 0.9, "top_k": 5, "typical_p": 0.5}
    if temperature != "absent":
        kwargs["temperature"] = temperature
    assert generation_parameters(kwargs) == {"do_sample": False, "max_new_tokens": 10}


def test_lm_base_defaults_are_greedy() -> None:
    # tgispy's LM base class defaults: temperature 0.0, max_tokens 150, top_p 1 (an int), n 1
    assert params(temperature=0.0, max_tokens=150, top_p=1, n=1) == {
        "do_sample": False,
        "max_new_tokens": 150,
    }


def test_sampling_sends_temperature_and_knobs() -> None:
    assert params(temperature=0.7, top_p=0.9, top_k=40, typical_p=0.95) == {
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "typical_p": 0.95,
    }


@pytest.mark.parametrize("off", [1, 1.0, None])
def test_top_p_and_typical_p_of_one_mean_off(off: Any) -> None:
    assert params(temperature=0.5, top_p=off, typical_p=off) == {
        "do_sample": True,
        "temperature": 0.5,
    }


def test_do_sample_without_temperature_samples_at_the_default() -> None:
    assert params(do_sample=True, top_k=3) == {"do_sample": True, "top_k": 3}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"temperature": "hot"}, "temperature must be a finite number"),
        ({"temperature": float("nan")}, "finite"),
        ({"top_p": 0}, r"top_p must be > 0 and < 1 \(use 1.0 or None"),
        ({"top_p": 1.5}, "top_p must be > 0 and < 1"),
        ({"typical_p": -1}, "typical_p must be > 0 and < 1"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"top_k": 2.5}, "top_k must be an integer"),
        ({"temperature": 0, "do_sample": True}, "set temperature > 0"),
        ({"do_sample": False, "temperature": 0.5}, "drop do_sample"),
        ({"do_sample": "yes"}, "do_sample must be True or False"),
    ],
)
def test_sampling_argument_errors(kwargs: dict[str, Any], match: str) -> None:
    rejects(match, **kwargs)


def test_bad_knobs_are_rejected_even_when_greedy() -> None:
    rejects("top_p must be", temperature=0, top_p=2)


# ---- n / best_of ---------------------------------------------------------------------------------


def test_n_becomes_best_of_with_sampling_and_details() -> None:
    assert params(n=2, temperature=0.7) == {
        "do_sample": True,
        "temperature": 0.7,
        "details": True,
        "best_of": 2,
    }
    assert params(n=3) == {"do_sample": True, "details": True, "best_of": 3}


def test_details_stays_on_for_best_of() -> None:
    assert params(n=2, temperature=1.0, details=False)["details"] is True


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be an integer >= 1"),
        ({"n": True}, "n must be an integer"),
        ({"n": 2, "best_of": 3, "temperature": 1}, "disagree; pass only n"),
        ({"n": 2, "temperature": 0}, r"n=2 needs sampling; set temperature > 0 .* or n=1"),
        ({"n": 2, "do_sample": False}, "do_sample=False asks for greedy"),
        ({"n": 2, "temperature": 0.5, "seed": 1}, "seed cannot be combined with n/best_of=2"),
        ({"best_of": 0}, "best_of must be an integer >= 1"),
    ],
)
def test_n_errors(kwargs: dict[str, Any], match: str) -> None:
    rejects(match, **kwargs)


def test_best_of_limits_with_info_and_streaming() -> None:
    rejects("above the server's max_best_of=2", n=3, temperature=0.5, _info=INFO)
    assert generation_parameters({"n": 2, "temperature": 0.5}, info=INFO)["best_of"] == 2
    with pytest.raises(InvalidRequestError, match="cannot be streamed"):
        generation_parameters({"n": 2, "temperature": 0.5}, stream=True)
    assert params(best_of=1) == {"do_sample": False, "best_of": 1}


# ---- lengths, stop, the other parameters ---------------------------------------------------------


def test_max_tokens_aliases() -> None:
    assert params(max_tokens=7)["max_new_tokens"] == 7
    assert params(max_new_tokens=7, max_tokens=7)["max_new_tokens"] == 7
    rejects("disagree", max_new_tokens=7, max_tokens=8)
    rejects("max_tokens must be a positive integer", max_tokens=0)
    rejects("max_tokens must be a positive integer", max_tokens=-3)
    rejects("max_new_tokens must be a positive integer", max_new_tokens=1.5)
    assert "max_new_tokens" not in params(max_tokens=None)


def test_max_tokens_against_max_total_tokens() -> None:
    assert generation_parameters({"max_tokens": 4095}, info=INFO)["max_new_tokens"] == 4095
    err = rejects("leaves no room for the prompt", max_tokens=4096, _info=INFO)
    assert "4096 tokens in total" in str(err)
    assert params(max_tokens=100_000)["max_new_tokens"] == 100_000  # unknown limit: not enforced


def test_stop_normalisation_and_limit() -> None:
    assert params(stop="\n")["stop"] == ["\n"]
    assert params(stop=("a", "b"))["stop"] == ["a", "b"]
    assert "stop" not in params(stop=[])
    rejects("stop must be a string or a list of strings", stop=["a", 1])
    rejects("stop must be a string", stop=5)
    five = ["a", "b", "c", "d", "e"]
    rejects("at most 4; pass fewer stop sequences", stop=five, _info=INFO)
    assert params(stop=five)["stop"] == five  # a server may raise --max-stop-sequences


def test_seed() -> None:
    assert params(seed=0)["seed"] == 0
    rejects("seed must be an integer >= 0", seed=-1)
    rejects("seed must be an integer", seed="1")


def test_penalties() -> None:
    assert params(repetition_penalty=1.2)["repetition_penalty"] == 1.2
    rejects("repetition_penalty must be > 0", repetition_penalty=0)
    # passed through as-is: never DSPy 2.4's ``1 - frequency_penalty``
    assert params(frequency_penalty=0.5)["frequency_penalty"] == 0.5
    assert params(frequency_penalty=-2)["frequency_penalty"] == -2.0
    rejects("between -2.0 and 2.0", frequency_penalty=2.5)
    rejects(
        "frequency_penalty needs TGI >= 1.4.1 but the server reports version 1.3.4",
        frequency_penalty=0.5,
        _info=OLD,
    )
    assert "frequency_penalty" not in generation_parameters({"frequency_penalty": 0}, info=OLD)


def test_truncate() -> None:
    assert params(truncate=100)["truncate"] == 100
    rejects("truncate must be an integer >= 1", truncate=0)
    rejects("above the server's max_input_tokens=4095", truncate=5000, _info=INFO)


def test_flags_pass_through() -> None:
    got = params(watermark=True, return_full_text=False, decoder_input_details=True, details=True)
    assert {
        k: got[k] for k in ("watermark", "return_full_text", "decoder_input_details", "details")
    } == {
        "watermark": True,
        "return_full_text": False,
        "decoder_input_details": True,
        "details": True,
    }
    rejects("watermark must be True or False", watermark="yes")
    with pytest.raises(InvalidRequestError, match="decoder_input_details=True cannot be streamed"):
        generation_parameters({"decoder_input_details": True}, stream=True)


def test_top_n_tokens() -> None:
    assert params(top_n_tokens=3)["top_n_tokens"] == 3
    assert "top_n_tokens" not in params(top_n_tokens=0)
    rejects("top_n_tokens needs TGI >= 1.0.3", top_n_tokens=2, _info=ServerInfo(version="0.9.4"))


@pytest.mark.parametrize(
    "grammar",
    [
        {"type": "json", "value": {"properties": {"a": {"type": "string"}}}},
        {"type": "json", "value": '{"properties": {}}'},
        {"type": "regex", "value": r"\d+"},
        {"type": "json_schema", "value": {"name": "x", "schema": {"type": "object"}}},
    ],
)
def test_grammar_variants(grammar: dict[str, Any]) -> None:
    assert params(grammar=grammar)["grammar"] == grammar


def test_grammar_alias_and_errors() -> None:
    schema = {"properties": {}}
    assert params(grammar={"type": "json_object", "value": schema})["grammar"] == {
        "type": "json",
        "value": schema,
    }
    rejects("grammar must look like", grammar="json")
    rejects("grammar type must be one of", grammar={"type": "yaml", "value": ""})
    rejects("'regex' value must be a string", grammar={"type": "regex", "value": 5})
    rejects("'json_schema' value must be", grammar={"type": "json_schema", "value": schema})
    rejects("grammar needs TGI >= 1.4.1", grammar={"type": "regex", "value": "a"}, _info=OLD)
    rejects(
        "needs TGI >= 3.3.0",
        grammar={"type": "json_schema", "value": {"schema": {}}},
        _info=ServerInfo(version="2.4.1"),
    )


def test_adapter_id() -> None:
    assert params(adapter_id="predibase/dbpedia")["adapter_id"] == "predibase/dbpedia"
    rejects("adapter_id must be a non-empty string", adapter_id="")
    rejects("adapter_id needs TGI >= 2.1.0", adapter_id="x", _info=ServerInfo(version="2.0.4"))


# ---- keys ----------------------------------------------------------------------------------------


def test_client_only_keys_are_dropped() -> None:
    kwargs = {key: object() for key in CLIENT_ONLY_KEYS - {"n"}}
    assert generation_parameters({**kwargs, "max_tokens": 3}) == {
        "do_sample": False,
        "max_new_tokens": 3,
    }


def test_unknown_key_names_the_key_suggests_and_lists() -> None:
    err = rejects("unsupported generation argument", temprature=0.5)
    assert "'temprature' (did you mean 'temperature'?)" in str(err)
    for key in GENERATE_KEYS:
        assert key in str(err)
    assert isinstance(err, ConfigError)


def test_inputs_are_not_mutated_and_outputs_are_fresh() -> None:
    kwargs = {"stop": ["a"], "temperature": 0.5, "max_tokens": 5}
    first = generation_parameters(kwargs)
    first["stop"].append("b")
    assert kwargs == {"stop": ["a"], "temperature": 0.5, "max_tokens": 5}
    assert generation_parameters(kwargs)["stop"] == ["a"]


# ---- build_generate_request ---------------------------------------------------------------------


def test_generate_body_always_has_parameters() -> None:
    assert build_generate_request("Hi", {}) == {"inputs": "Hi", "parameters": {"do_sample": False}}


def test_generate_body_prompt_checks() -> None:
    for bad in ("", None, b"Hi"):
        with pytest.raises(InvalidRequestError, match="prompt must be a non-empty string"):
            build_generate_request(bad, {})  # type: ignore[arg-type]


# ---- build_chat_request -------------------------------------------------------------------------


def test_chat_defaults_to_greedy_and_model_tgi() -> None:
    assert build_chat_request(USER, {"max_tokens": 8, "top_p": 0.9, "n": 1}) == {
        "model": "tgi",
        "messages": USER,
        "max_tokens": 8,
        "temperature": 0.0,
    }


def test_chat_sampling_and_parameters() -> None:
    body = build_chat_request(
        USER,
        {
            "temperature": 0.7,
            "top_p": 0.9,
            "seed": 3,
            "stop": "END",
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
            "logprobs": True,
            "top_logprobs": 2,
            "max_new_tokens": 9,
        },
        model="my-adapter",
    )
    assert body == {
        "model": "my-adapter",
        "messages": USER,
        "max_tokens": 9,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 3,
        "stop": ["END"],
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
        "logprobs": True,
        "top_logprobs": 2,
    }


def test_chat_stream_asks_for_usage_when_the_server_can() -> None:
    body = build_chat_request(USER, {}, stream=True)
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})
    old = build_chat_request(USER, {}, stream=True, info=ServerInfo(version="2.2.0"))
    assert old["stream"] is True and "stream_options" not in old


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}},
        {"type": "json_schema", "value": {"name": "a", "schema": SCHEMA}},
        {"type": "json_object", "value": SCHEMA},
        {"type": "json_object", "schema": SCHEMA},
        {"type": "json", "value": SCHEMA},
    ],
)
def test_chat_response_format_becomes_tgi_json(response_format: dict[str, Any]) -> None:
    body = build_chat_request(USER, {"response_format": response_format})
    assert body["response_format"] == {"type": "json", "value": SCHEMA}


def test_chat_response_format_regex_text_and_errors() -> None:
    regex = {"type": "regex", "value": "[0-9]+"}
    assert build_chat_request(USER, {"response_format": regex})["response_format"] == regex
    assert build_chat_request(USER, {"grammar": regex})["response_format"] == regex
    assert "response_format" not in build_chat_request(USER, {"response_format": {"type": "text"}})
    for bad, match in [
        ({"type": "json_object"}, "pass the schema"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "needs a 'schema'"),
        ("json", "response_format must look like"),
    ]:
        with pytest.raises(InvalidRequestError, match=match):
            build_chat_request(USER, {"response_format": bad})
    with pytest.raises(InvalidRequestError, match=r"needs TGI >= 1\.4\.1"):
        build_chat_request(USER, {"response_format": regex}, info=ServerInfo(version="1.4.0"))
    with pytest.raises(InvalidRequestError, match="either response_format or grammar"):
        build_chat_request(USER, {"response_format": regex, "grammar": regex})


TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "d", "parameters": SCHEMA},
}


def test_chat_tools() -> None:
    body = build_chat_request(
        USER, {"tools": [TOOL], "tool_choice": "get_weather", "tool_prompt": "Use a tool"}
    )
    assert body["tools"] == [TOOL]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["tool_prompt"] == "Use a tool"
    for choice in ("auto", "none", "required"):
        assert (
            build_chat_request(USER, {"tools": [TOOL], "tool_choice": choice})["tool_choice"]
            == choice
        )
    object_choice = {"type": "function", "function": {"name": "get_weather"}}
    assert (
        build_chat_request(USER, {"tools": [TOOL], "tool_choice": object_choice})["tool_choice"]
        == object_choice
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"tools": [TOOL], "response_format": {"type": "regex", "value": "a"}},
            "cannot combine tools with response_format",
        ),
        ({"tools": []}, "tools must be a non-empty list"),
        ({"tools": [{"type": "function", "function": {}}]}, r"tools\[0\] must look like"),
        ({"tools": [{"type": "retrieval", "function": {"name": "x"}}]}, r"tools\[0\]"),
        ({"tools": [TOOL], "tool_choice": "nope"}, "not in tools"),
        ({"tools": [TOOL], "tool_choice": 3}, "tool_choice must be"),
        ({"tool_choice": "auto"}, "tool_choice needs tools"),
        ({"tool_prompt": "x"}, "tool_prompt needs tools"),
        ({"n": 2}, "returns one choice"),
        ({"top_logprobs": 2}, "top_logprobs needs logprobs=True"),
        ({"presence_penalty": 3}, "presence_penalty must be between"),
        ({"top_k": 3}, r"unsupported generation argument.*'top_k'"),
        ({"temperature": -1}, "temperature must be >= 0"),
    ],
)
def test_chat_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        build_chat_request(USER, kwargs)


def test_chat_adapter_and_model() -> None:
    assert build_chat_request(USER, {"adapter_id": "a/b"})["model"] == "a/b"
    assert build_chat_request(USER, {"adapter_id": "a/b"}, model="a/b")["model"] == "a/b"
    with pytest.raises(InvalidRequestError, match="disagree"):
        build_chat_request(USER, {"adapter_id": "a/b"}, model="c/d")
    assert build_chat_request(USER, {"model": "ignored"})["model"] == "tgi"


def test_chat_needs_a_chat_capable_server() -> None:
    with pytest.raises(InvalidRequestError, match=r"needs TGI >= 1\.4\.0"):
        build_chat_request(USER, {}, info=ServerInfo(version="1.3.4"))


def test_chat_messages_are_copied_and_checked() -> None:
    call = {
        "id": "0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"answer": "x"}'},
    }
    messages = [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "0", "content": "6.7"},
    ]
    body = build_chat_request(messages, {})
    assert body["messages"][2] == {"role": "assistant", "tool_calls": [call]}
    assert body["messages"][3] == {"role": "assistant", "tool_calls": [call]}
    assert messages[2]["content"] is None and messages[3]["content"] == ""  # not mutated
    body["messages"][0]["content"] = "changed"
    assert messages[0]["content"] == "Be brief"
    for bad, match in [
        ([], "non-empty list"),
        ("Hi", "non-empty list"),
        ([{"content": "x"}], r"messages\[0\] must be a dict with a 'role'"),
        ([{"role": "user"}], r"messages\[0\] needs 'content'"),
        ([{"role": "user", "content": 5}], "must be a string or a list"),
    ]:
        with pytest.raises(InvalidRequestError, match=match):
            build_chat_request(bad, {})  # type: ignore[arg-type]


# ---- the memo of generation_parameters (same settings, call after call) ----------------------


def test_memo_keeps_types_apart() -> None:
    from tgispy.tgi._request import generation_parameters

    # True == 1 and 1.0 == 1 in Python: a memo keyed on values alone would hand one's result
    # (or its acceptance) to the other.
    assert generation_parameters({"max_tokens": 7}) == {"do_sample": False, "max_new_tokens": 7}
    with pytest.raises(InvalidRequestError):
        generation_parameters({"max_tokens": True})
    assert generation_parameters({"temperature": 1})["temperature"] == 1
    first = generation_parameters({"temperature": 0.5, "top_k": 3})
    with pytest.raises(InvalidRequestError):
        generation_parameters({"temperature": 0.5, "top_k": 3.0})
    assert first == generation_parameters({"temperature": 0.5, "top_k": 3})


def test_memo_results_are_independent_copies() -> None:
    from tgispy.tgi._request import generation_parameters

    kwargs = {"max_tokens": 9, "stop": ["\n", "END"]}
    a = generation_parameters(kwargs)
    a["stop"].append("mutated")
    a["max_new_tokens"] = 1
    b = generation_parameters(kwargs)
    assert b == {"do_sample": False, "max_new_tokens": 9, "stop": ["\n", "END"]}
    kwargs["stop"].append("X")  # the caller's list changed: a different request
    assert generation_parameters(kwargs)["stop"] == ["\n", "END", "X"]


def test_memo_checks_each_servers_limits() -> None:
    from tgispy.tgi._request import generation_parameters

    kwargs = {"stop": ["a", "b", "c"]}
    assert generation_parameters(kwargs, info=ServerInfo(max_stop_sequences=4))["stop"] == [
        "a",
        "b",
        "c",
    ]
    with pytest.raises(InvalidRequestError, match="at most 2"):
        generation_parameters(kwargs, info=ServerInfo(max_stop_sequences=2))
    # a result computed for no /info is not handed to a server whose limits refuse it
    assert generation_parameters(kwargs)["stop"] == ["a", "b", "c"]
    with pytest.raises(InvalidRequestError, match="at most 1"):
        generation_parameters(kwargs, info=ServerInfo(max_stop_sequences=1))
