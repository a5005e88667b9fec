"""Typed outputs through the real HFClientTGI against a scripted TGI on 127.0.0.1.

Covers both paths: a server that supports grammars (TGI 3.3 ``/info``) gets ``grammar`` /
``response_format`` and no retry; an older server (``/info`` version below 1.4.1) gets plain
requests, text parsing and one retry that shows the parse error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.typed.types_ import Arith, Extract, Person, Sentiment

import tgispy as dspy
from tgispy.adapters import JSONAdapter
from tgispy.errors import ParseError
from tgispy.lm._tgi import HFClientTGI
from tgispy.testing import DEFAULT_INFO, Recorded, Reply, ScriptedTGI

OPENAPI = json.loads((Path(__file__).parent.parent / "tgi" / "data" / "openapi.json").read_text())
OLD_INFO = {**DEFAULT_INFO, "version": "1.3.4"}  # before grammars (1.4.1)
CHAT_NO_GRAMMAR_INFO = {**DEFAULT_INFO, "version": "1.4.0"}  # chat API, no response_format


def _check(name: str, body: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    jsonschema.validate(body, schema)


def _chat_reply(text: str) -> Reply:
    return Reply(
        200,
        {
            "object": "chat.completion",
            "id": "",
            "created": 0,
            "model": "scripted/model",
            "system_fingerprint": "3.3.6-dev0-native",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        },
    )


def _lm(server: ScriptedTGI, **kwargs: Any) -> HFClientTGI:
    return HFClientTGI(
        model="scripted/model", port=server.port, url="http://127.0.0.1", cache=False, **kwargs
    )


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedTGI]]:
    servers: list[ScriptedTGI] = []

    def start(replies: list[Reply], info: dict[str, Any] = DEFAULT_INFO) -> ScriptedTGI:
        server = ScriptedTGI(replies, info=info).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _generate_requests(server: ScriptedTGI) -> list[Recorded]:
    return [r for r in server.requests if r.path == "/generate"]


def test_json_grammar_is_sent_and_values_come_back_typed(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    server = scripted([Reply.generate('{"person":{"name":"Ann","age":30,"city":"Rome"}}')])
    lm = _lm(server)
    dspy.configure(lm=lm)
    pred = dspy.Predict(Extract)(text="Ann is 30 and lives in Rome.")
    assert pred.person == Person(name="Ann", age=30, city="Rome")
    (request,) = _generate_requests(server)
    _check("GenerateRequest", request.json)
    params = request.json["parameters"]
    assert params["grammar"] == {"type": "json", "value": JSONAdapter().plan(Extract).spec.schema}
    assert "stop" not in params  # DSPy's default "\n" stop would cut the JSON
    assert request.json["inputs"] == JSONAdapter().format(
        Extract, [], {"text": "Ann is 30 and lives in Rome."}
    )


def test_regex_grammar_for_a_literal_label(scripted: Callable[..., ScriptedTGI]) -> None:
    server = scripted([Reply.generate(" negative")])
    dspy.configure(lm=_lm(server))
    assert dspy.Predict(Sentiment)(review="Cold food.").label == "negative"
    (request,) = _generate_requests(server)
    _check("GenerateRequest", request.json)
    assert request.json["parameters"]["grammar"] == {
        "type": "regex",
        "value": " ?(positive|negative|neutral)\\n?",
    }
    assert request.json["parameters"]["stop"] == ["\n", "\n\n"]


def test_with_grammar_an_invalid_value_raises_without_retry(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    server = scripted([Reply.generate('{"person":{"name":"Ann","age":30')])
    dspy.configure(lm=_lm(server))
    with pytest.raises(ParseError, match="raise max_tokens") as info:
        dspy.Predict(Extract)(text="Ann")
    assert info.value.completion == '{"person":{"name":"Ann","age":30'
    assert len(_generate_requests(server)) == 1


def test_old_server_falls_back_to_text_with_one_retry(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    server = scripted([Reply.generate(" about twelve"), Reply.generate(" 12")], info=OLD_INFO)
    lm = _lm(server)
    dspy.configure(lm=lm)
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    first, second = _generate_requests(server)
    assert "grammar" not in first.json["parameters"]
    assert "grammar" not in second.json["parameters"]
    assert second.json["inputs"].startswith(first.json["inputs"] + " about twelve\n\n")
    assert (
        "That output is not valid: answer: 'about twelve' is not an integer."
        in (second.json["inputs"])
    )


def test_old_server_fails_after_the_retry(scripted: Callable[..., ScriptedTGI]) -> None:
    server = scripted(
        [Reply.generate(" Ann, thirty"), Reply.generate(' {"name": "Ann"}')], info=OLD_INFO
    )
    dspy.configure(lm=_lm(server))
    with pytest.raises(ParseError) as info:
        dspy.Predict(Extract)(text="Ann is thirty.")
    assert info.value.completion == ' {"name": "Ann"}'
    assert "person: Field required" in str(info.value)
    assert len(_generate_requests(server)) == 2


def test_old_server_json_stops_at_a_blank_line(scripted: Callable[..., ScriptedTGI]) -> None:
    server = scripted([Reply.generate('{"person":{"name":"A","age":1,"city":"B"}}')], info=OLD_INFO)
    dspy.configure(lm=_lm(server))
    dspy.Predict(Extract)(text="t")
    (request,) = _generate_requests(server)
    assert request.json["parameters"]["stop"] == ["\n\n"]


def test_chat_mode_sends_messages_with_response_format(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    server = scripted([_chat_reply('{"answer": 12}')])
    dspy.configure(lm=_lm(server, mode="chat"))
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    (request,) = [r for r in server.requests if r.path == "/v1/chat/completions"]
    _check("ChatRequest", request.json)
    assert request.json["messages"] == JSONAdapter().format_messages(
        Arith, [], {"question": "5+7?"}
    )
    assert request.json["response_format"] == {
        "type": "json",
        "value": JSONAdapter().plan(Arith, chat=True).spec.schema,
    }


def test_chat_per_module_on_a_text_lm(scripted: Callable[..., ScriptedTGI]) -> None:
    server = scripted([_chat_reply('{"label": "positive"}')])
    dspy.configure(lm=_lm(server))
    assert dspy.Predict(Sentiment, adapter="chat")(review="Lovely").label == "positive"
    assert [r.path for r in server.requests if r.method == "POST"] == ["/v1/chat/completions"]


def test_chat_without_grammar_support_retries_in_the_conversation(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    server = scripted(
        [_chat_reply("It is twelve."), _chat_reply('{"answer": 12}')], info=CHAT_NO_GRAMMAR_INFO
    )
    dspy.configure(lm=_lm(server, mode="chat"))
    assert dspy.Predict(Arith)(question="5+7?").answer == 12
    first, second = [r.json for r in server.requests if r.path == "/v1/chat/completions"]
    assert "response_format" not in first and "response_format" not in second
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assert second["messages"][-2] == {"role": "assistant", "content": "It is twelve."}
    assert "no JSON object found" in second["messages"][-1]["content"]


def test_chat_n_samples_are_n_requests(scripted: Callable[..., ScriptedTGI]) -> None:
    server = scripted([_chat_reply('{"answer": 1}'), _chat_reply('{"answer": 2}')])
    dspy.configure(lm=_lm(server, mode="chat"))
    pred = dspy.Predict(Arith, n=2)(question="?")
    assert sorted(pred.completions.answer) == [1, 2]
    chats = [r.json for r in server.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 2 and chats[0]["temperature"] == 0.7


async def test_supports_grammar_follows_the_info_version(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    assert await _lm(scripted([])).supports_grammar() is True
    assert await _lm(scripted([], info=OLD_INFO)).supports_grammar() is False
    # no /info (a proxy hiding it): unknown, so the server is trusted with the grammar
    assert await _lm(scripted([], info=None)).supports_grammar() is True


async def test_async_face_with_concurrent_typed_calls(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    def reply(rec: Recorded) -> Reply:
        question = rec.json["inputs"].rsplit("Question: ", 1)[-1]
        return Reply.generate(" " + str(len(question)))

    server = scripted([])
    server.set_script(reply)
    dspy.configure(lm=_lm(server))
    predictor = dspy.Predict(Arith)
    preds = await asyncio.gather(*(predictor.acall(question="x" * i) for i in range(1, 6)))
    # the question line is "x"*i + "\nAnswer:" -> i + 8 characters
    assert [p.answer for p in preds] == [i + 8 for i in range(1, 6)]


def test_one_prompt_on_a_chat_lm_when_the_adapter_says_so(
    scripted: Callable[..., ScriptedTGI],
) -> None:
    server = scripted([_chat_reply(" positive")])
    dspy.configure(lm=_lm(server, mode="chat"))
    predictor = dspy.Predict(Sentiment, adapter=JSONAdapter(chat=False))
    assert predictor(review="Lovely").label == "positive"
    (request,) = [r for r in server.requests if r.path == "/v1/chat/completions"]
    _check("ChatRequest", request.json)
    prompt = JSONAdapter().format(Sentiment, [], {"review": "Lovely"})
    assert request.json["messages"] == [{"role": "user", "content": prompt}]
    assert request.json["response_format"] == {
        "type": "regex",
        "value": " ?(positive|negative|neutral)\\n?",
    }
