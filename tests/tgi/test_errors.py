"""TGI error bodies and error events -> tgispy's error tree (facts from protocol_facts.json)."""

from __future__ import annotations

import json
import pickle
import re
from email.utils import formatdate
from typing import Any

import pytest

from tgispy.errors import (
    ContextWindowExceededError,
    GenerationError,
    IncompleteGenerationError,
    MalformedResponseError,
    OverloadedError,
    ServerError,
    TGIError,
    UnavailableError,
    ValidationError,
)
from tgispy.tgi import error_from_payload, error_from_response, parse_retry_after

from ._data import protocol_facts

FACTS = protocol_facts()
REPLICA = "http://127.0.0.1:8080"

# What each TGI error_type must become (written out here, independently of the implementation).
EXPECTED_CLASS: dict[str, type[TGIError]] = {
    "validation": ValidationError,
    "generation": GenerationError,
    "overloaded": OverloadedError,
    "incomplete_generation": IncompleteGenerationError,
    "incomplete_generation_stream": IncompleteGenerationError,
    "template_error": ValidationError,
    "missing_template_variable": ValidationError,
    "tool_error": ValidationError,
    "stream_serialization_error": ServerError,
    "healthcheck": UnavailableError,
    "suffix not supported": ValidationError,
    "batch size exceeded": ValidationError,
    "Input validation error": ValidationError,
    "headers": ServerError,
    "no details": ServerError,
}


def _message(fact: dict[str, Any]) -> str:
    return fact.get("message") or fact["message_prefix"] + "something went wrong"


def assert_round_trips(err: TGIError) -> None:
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is type(err)
    assert (clone.message, clone.status, clone.error_type, clone.replica, clone.retry_after) == (
        err.message,
        err.status,
        err.error_type,
        err.replica,
        err.retry_after,
    )
    assert str(clone) == str(err)


@pytest.mark.parametrize("fact", FACTS["infer_errors"], ids=lambda f: f["error_type"])
def test_infer_error_responses(fact: dict[str, Any]) -> None:
    message = _message(fact)
    body = json.dumps({"error": message, "error_type": fact["error_type"]}).encode()
    err = error_from_response(fact["http_status"], body, replica=REPLICA)
    assert type(err) is EXPECTED_CLASS[fact["error_type"]]
    assert (err.status, err.message, err.error_type, err.replica) == (
        fact["http_status"],
        message,
        fact["error_type"],
        REPLICA,
    )
    assert_round_trips(err)


@pytest.mark.parametrize("fact", FACTS["infer_errors"], ids=lambda f: f["error_type"])
def test_infer_errors_as_generate_stream_events(fact: dict[str, Any]) -> None:
    """/generate_stream (and the OpenAI routes before 2.4.0) send {error, error_type} events."""
    message = _message(fact)
    err = error_from_payload({"error": message, "error_type": fact["error_type"]}, replica=REPLICA)
    assert type(err) is EXPECTED_CLASS[fact["error_type"]]
    # the stream's HTTP status is 200; the error's status is the one TGI would have answered
    assert (err.status, err.message, err.error_type, err.replica) == (
        fact["http_status"],
        message,
        fact["error_type"],
        REPLICA,
    )
    assert_round_trips(err)


@pytest.mark.parametrize("fact", FACTS["infer_errors"], ids=lambda f: f["error_type"])
def test_infer_errors_as_2_4_1_chat_events(fact: dict[str, Any]) -> None:
    """Since 2.4.1 the OpenAI routes send {error: {message, http_status_code: 422}}, no type."""
    message = _message(fact)
    err = error_from_payload({"error": {"message": message, "http_status_code": 422}})
    # the class (and so retryability) follows the message, not the blanket 422
    assert type(err) is EXPECTED_CLASS[fact["error_type"]]
    assert (err.status, err.message, err.error_type) == (422, message, fact["error_type"])
    assert_round_trips(err)


def test_overload_in_a_2_4_1_stream_is_retryable() -> None:
    err = error_from_payload({"error": {"message": "Model is overloaded", "http_status_code": 422}})
    assert isinstance(err, OverloadedError) and err.retryable


def test_openai_style_error_object() -> None:
    err = error_from_payload(
        {
            "error": {
                "message": "Input validation error: `top_p` must be > 0.0 and < 1.0",
                "type": "validation",
                "code": 422,
            }
        }
    )
    assert type(err) is ValidationError
    assert (err.status, err.error_type) == (422, "validation")


def _other_error_cases() -> list[tuple[str, int, bytes, str | None, str]]:
    cases = []
    for fact in FACTS["other_errors"]:
        status = fact["http_status"]
        where = fact["where"]
        body = fact.get("body")
        if isinstance(body, dict):
            cases.append(
                (where, status, json.dumps(body).encode(), body["error_type"], body["error"])
            )
        elif body == "empty":
            cases.append((where, status, b"", None, ""))
        elif isinstance(body, str):
            cases.append((where, status, body.encode(), None, body))
        else:  # only an error_type (or a list of them) is known
            types = (
                fact["error_type"] if isinstance(fact["error_type"], list) else [fact["error_type"]]
            )
            for error_type in types:
                message = f"{error_type}: details"
                payload = {"error": message, "error_type": error_type}
                cases.append((where, status, json.dumps(payload).encode(), error_type, message))
    return cases


OTHER_CASES = _other_error_cases()


@pytest.mark.parametrize(
    ("where", "status", "body", "error_type", "message"),
    OTHER_CASES,
    ids=[f"{c[1]}-{c[0][:40]}" for c in OTHER_CASES],
)
def test_other_errors(
    where: str, status: int, body: bytes, error_type: str | None, message: str
) -> None:
    err = error_from_response(status, body, replica=REPLICA)
    if error_type is not None:
        expected = EXPECTED_CLASS[error_type]
    else:  # axum's plain-text rejections and the empty 401 carry only a status
        expected = {422: ValidationError, 503: UnavailableError}.get(status, ServerError)
    assert type(err) is expected
    assert (err.status, err.error_type, err.replica) == (status, error_type, REPLICA)
    if message:
        assert err.message == message
    else:  # an empty body still yields a message that says what happened and what to check
        assert str(status) in err.message and "api_key" in err.message
    assert_round_trips(err)


def _validation_messages() -> list[tuple[str, str]]:
    messages = []
    for name, template in FACTS["validation_messages"].items():
        if name.startswith("_"):
            continue
        for text in template if isinstance(template, list) else [template]:
            filled = re.sub(r"\{[a-z_]+\}", "7", text).replace("...", "bad bytes")
            messages.append((name, filled))
    return messages


@pytest.mark.parametrize(("name", "text"), _validation_messages())
def test_validation_messages(name: str, text: str) -> None:
    message = FACTS["validation_messages"]["_prefix"].split("'")[1].split("<")[0] + text
    assert message.startswith("Input validation error: ")
    body = json.dumps({"error": message, "error_type": "validation"})
    err = error_from_response(422, body, replica=REPLICA)
    context = name in ("MaxTotalTokens", "InputLength")
    assert type(err) is (ContextWindowExceededError if context else ValidationError)
    assert isinstance(err, ValidationError) and not err.retryable
    assert (err.status, err.message, err.error_type) == (422, message, "validation")
    assert_round_trips(err)


def test_plain_text_axum_rejection() -> None:
    body = (
        b"Failed to deserialize the JSON body into the target type: parameters.stop: invalid "
        b'type: string "x", expected a sequence at line 1 column 40'
    )
    err = error_from_response(422, body)
    assert type(err) is ValidationError
    assert err.message == body.decode() and err.error_type is None


@pytest.mark.parametrize("status", [502, 503, 504])
def test_proxy_html_is_unavailable_and_clipped(status: int) -> None:
    page = b"<html><body>" + b"<p>Bad gateway</p>" * 200 + b"</body></html>"
    err = error_from_response(status, page, replica=REPLICA)
    assert type(err) is UnavailableError and err.retryable
    assert err.message.startswith("<html><body><p>Bad gateway")
    assert len(err.message) < 600 and "more chars" in err.message


def test_garbage_bytes_do_not_crash() -> None:
    err = error_from_response(500, b"\xff\xfe{not json")
    assert type(err) is ServerError and err.status == 500
    assert "not json" in err.message


def test_json_without_error_key_keeps_the_body() -> None:
    err = error_from_response(500, b'{"detail": "boom"}')
    assert type(err) is ServerError and "boom" in err.message


def test_malformed_error_payloads() -> None:
    assert isinstance(error_from_payload({"error": None}), MalformedResponseError)
    assert isinstance(error_from_payload([1, 2]), MalformedResponseError)  # type: ignore[arg-type]


# ---- Retry-After ---------------------------------------------------------------------------


def test_retry_after_seconds_from_headers_any_case() -> None:
    body = b'{"error":"Model is overloaded","error_type":"overloaded"}'
    for name in ("retry-after", "Retry-After", "RETRY-AFTER"):
        err = error_from_response(429, body, headers={name: "3"})
        assert type(err) is OverloadedError and err.retry_after == 3.0
        assert_round_trips(err)
    assert error_from_response(429, body, headers={}).retry_after is None


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    date = formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    err = error_from_response(503, b"", headers={"Retry-After": formatdate(usegmt=True)})
    assert err.retry_after is not None and 0.0 <= err.retry_after <= 1.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "inf", "nan"])
def test_unreadable_retry_after(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_message_never_contains_request_secrets() -> None:
    # Only the response is read; even an echoing proxy's headers are not copied into the message.
    headers = {"authorization": "Bearer hf_SECRET", "retry-after": "1"}
    err = error_from_response(401, b"", replica=REPLICA, headers=headers)
    assert "hf_SECRET" not in str(err) and "hf_SECRET" not in repr(err.__reduce__())
