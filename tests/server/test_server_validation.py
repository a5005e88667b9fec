"""TGI's request deserialisation and validation rules, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from tgispy.server._problems import Problem
from tgispy.server._validation import (
    DEFAULT_PARAMETERS,
    GenerateParams,
    Limits,
    check_best_of,
    check_stream_params,
    parse_chat,
    parse_completion,
    parse_generate,
    resolve_lengths,
    validate,
)

PREFIX = "Failed to deserialize the JSON body into the target type: "


def _deserialize_error(body: Any, **kwargs: Any) -> str:
    with pytest.raises(Problem) as info:
        parse_generate(body, **kwargs)
    problem = info.value
    assert problem.status == 422
    assert problem.plain
    assert problem.body().decode().startswith(PREFIX)
    return problem.message[len(PREFIX) :]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "missing field `inputs`"),
        ({"inputs": 5}, "inputs: invalid type: integer `5`, expected a string"),
        (
            {"inputs": "x", "parameters": {"stop": "a"}},
            'parameters.stop: invalid type: string "a", expected a sequence',
        ),
        (
            {"inputs": "x", "parameters": {"stop": ["a", 1]}},
            "parameters.stop[1]: invalid type: integer `1`, expected a string",
        ),
        (
            {"inputs": "x", "parameters": {"max_new_tokens": -1}},
            "parameters.max_new_tokens: invalid value: integer `-1`, expected u32",
        ),
        (
            {"inputs": "x", "parameters": {"max_new_tokens": 2.5}},
            "parameters.max_new_tokens: invalid type: floating point `2.5`, expected u32",
        ),
        (
            {"inputs": "x", "parameters": {"seed": -3}},
            "parameters.seed: invalid value: integer `-3`, expected u64",
        ),
        (
            {"inputs": "x", "parameters": {"details": None}},
            "parameters.details: invalid type: null, expected a boolean",
        ),
        (
            {"inputs": "x", "parameters": {"temperature": "hot"}},
            'parameters.temperature: invalid type: string "hot", expected f32',
        ),
        (
            {"inputs": "x", "parameters": {"do_sample": 1}},
            "parameters.do_sample: invalid type: integer `1`, expected a boolean",
        ),
        (
            {"inputs": "x", "parameters": []},
            "parameters: invalid type: sequence, expected struct GenerateParameters",
        ),
        (
            {"inputs": "x", "parameters": {"grammar": {"type": "xml", "value": "a"}}},
            "parameters.grammar.type: unknown variant `xml`, expected one of `json`, "
            "`json_object`, `regex`, `json_schema`",
        ),
        (
            {"inputs": "x", "parameters": {"grammar": {"type": "regex"}}},
            "parameters.grammar: missing field `value`",
        ),
        ([1], "invalid type: sequence, expected struct GenerateRequest"),
    ],
)
def test_deserialisation_errors_are_axum_plain_text(body: Any, message: str) -> None:
    assert _deserialize_error(body) == message


def test_compat_stream_must_be_boolean() -> None:
    message = _deserialize_error({"inputs": "x", "stream": "yes"}, compat=True)
    assert message == 'stream: invalid type: string "yes", expected a boolean'


def test_unknown_fields_are_ignored_and_serde_defaults_apply() -> None:
    req = parse_generate({"inputs": "x", "parameters": {"foo": 1}, "bar": True})
    assert req.parameters == GenerateParams()
    assert req.parameters.do_sample is False
    assert req.parameters.details is False


def test_absent_parameters_object_means_tgi_default_parameters_which_sample() -> None:
    req = parse_generate({"inputs": "x"})
    assert req.parameters is DEFAULT_PARAMETERS
    assert req.parameters.do_sample is True
    assert validate("x", req.parameters, Limits()).sampling.do_sample is True
    empty = parse_generate({"inputs": "x", "parameters": {}})
    assert validate("x", empty.parameters, Limits()).sampling.do_sample is False


def _validation_message(params: GenerateParams, inputs: str = "x", **limits: Any) -> str:
    with pytest.raises(Problem) as info:
        validate(inputs, params, Limits(**limits))
    assert info.value.status == 422
    assert info.value.error_type == "validation"
    prefix = "Input validation error: "
    assert info.value.message.startswith(prefix)
    return info.value.message[len(prefix) :]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (GenerateParams(best_of=2), "you must use sampling when `best_of` is > 1"),
        (GenerateParams(temperature=0.0), "`temperature` must be strictly positive"),
        (GenerateParams(repetition_penalty=0.0), "`repetition_penalty` must be strictly positive"),
        (GenerateParams(frequency_penalty=2.5), "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        (GenerateParams(top_p=1.0), "`top_p` must be > 0.0 and < 1.0"),
        (GenerateParams(top_p=0.0), "`top_p` must be > 0.0 and < 1.0"),
        (GenerateParams(typical_p=1.0), "`typical_p` must be > 0.0 and < 1.0"),
        (GenerateParams(top_k=0), "`top_k` must be strictly positive"),
        (GenerateParams(max_new_tokens=0), "`max_new_tokens` must be strictly positive"),
        (
            GenerateParams(stop=("a", "b", "c", "d", "e")),
            "`stop` supports up to 4 stop sequences. Given: 5",
        ),
        (
            GenerateParams(best_of=2, do_sample=True, seed=1),
            "`seed` must not be set when `best_of` > 1",
        ),
        (GenerateParams(top_n_tokens=6), "`top_n_tokens` must be >= 0 and <= 5. Given: 6"),
        (
            GenerateParams(truncate=0),
            "`truncate` must be strictly positive and less than 2047. Given: 0",
        ),
    ],
)
def test_validation_messages_are_tgis(params: GenerateParams, message: str) -> None:
    assert _validation_message(params) == message


def test_empty_inputs_are_rejected() -> None:
    assert _validation_message(GenerateParams(), inputs="") == "`inputs` cannot be empty"


def test_validation_order_follows_tgi() -> None:
    # temperature is checked before top_p, which is checked before the stop count
    params = GenerateParams(temperature=0.0, top_p=1.0, stop=("a",) * 9)
    assert _validation_message(params) == "`temperature` must be strictly positive"
    params = GenerateParams(top_p=1.0, stop=("a",) * 9)
    assert _validation_message(params) == "`top_p` must be > 0.0 and < 1.0"


def test_any_warper_turns_sampling_on_as_in_tgi() -> None:
    limits = Limits()
    assert not validate("x", GenerateParams(), limits).sampling.do_sample
    assert not validate("x", GenerateParams(temperature=1.0), limits).sampling.do_sample
    for params in (
        GenerateParams(temperature=0.5),
        GenerateParams(top_k=5),
        GenerateParams(top_p=0.9),
        GenerateParams(typical_p=0.9),
        GenerateParams(do_sample=True),
    ):
        assert validate("x", params, limits).sampling.do_sample, params


def test_greedy_requests_carry_no_seed() -> None:
    assert validate("x", GenerateParams(seed=7), Limits()).sampling.seed is None
    assert validate("x", GenerateParams(seed=7, do_sample=True), Limits()).sampling.seed == 7


def test_best_of_limits() -> None:
    assert check_best_of(GenerateParams(best_of=0), Limits()) == 1
    assert check_best_of(GenerateParams(best_of=2), Limits()) == 2
    with pytest.raises(Problem, match=r"`best_of` must be > 0 and <= 2. Given: 3"):
        check_best_of(GenerateParams(best_of=3), Limits())
    with pytest.raises(Problem, match="`best_of` != 1 is not allowed for this endpoint"):
        check_best_of(GenerateParams(best_of=2), Limits(max_best_of=1))


def test_stream_specific_rejections() -> None:
    with pytest.raises(Problem, match="`best_of` != 1 is not supported when streaming tokens"):
        check_stream_params(GenerateParams(best_of=2))
    with pytest.raises(Problem, match="`decoder_input_details` == true is not supported"):
        check_stream_params(GenerateParams(decoder_input_details=True))
    check_stream_params(GenerateParams(best_of=1))


def test_lengths() -> None:
    limits = Limits(max_input_tokens=9, max_total_tokens=10)
    assert resolve_lengths(4, None, limits) == 6
    assert resolve_lengths(4, 6, limits) == 6
    with pytest.raises(Problem) as info:
        resolve_lengths(4, 7, limits)
    assert info.value.message == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 10. "
        "Given: 4 `inputs` tokens and 7 `max_new_tokens`"
    )
    with pytest.raises(Problem) as info:
        resolve_lengths(10, None, limits)
    assert info.value.message == (
        "Input validation error: `inputs` must have less than 9 tokens. Given: 10"
    )


def test_chat_mapping_follows_tgi() -> None:
    req = parse_chat(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            ],
            "max_tokens": 7,
            "temperature": 0,
            "presence_penalty": 0.5,
            "logprobs": True,
            "top_logprobs": 2,
            "stop": ["\n"],
            "stream": True,
            "stream_options": {"include_usage": True},
            "model": "tgi",
        }
    )
    assert req.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    params = req.parameters
    assert params.max_new_tokens == 7
    assert params.do_sample is False
    assert params.repetition_penalty == 2.5
    assert params.top_n_tokens == 2
    assert params.stop == ("\n",)
    assert params.details is True
    assert req.stream and req.include_usage and req.logprobs
    sampled = parse_chat({"messages": [{"role": "user", "content": "x"}]})
    assert sampled.parameters.do_sample is True


def test_chat_deserialisation_errors() -> None:
    with pytest.raises(Problem, match="missing field `messages`"):
        parse_chat({})
    with pytest.raises(Problem, match=r"messages\[0\]: missing field `role`"):
        parse_chat({"messages": [{"content": "x"}]})
    with pytest.raises(Problem, match="no vision model"):
        parse_chat({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})


def test_completion_prompts() -> None:
    assert parse_completion({"prompt": "a"}).prompts == ["a"]
    assert parse_completion({"prompt": ["a", "b"]}).prompts == ["a", "b"]
    assert parse_completion({"prompt": "a", "suffix": "z"}).suffix
    with pytest.raises(Problem, match="missing field `prompt`"):
        parse_completion({})
    with pytest.raises(Problem, match=r"prompt\[0\]: invalid type: integer `1`"):
        parse_completion({"prompt": [1]})
