"""TGI chat replies shaped as DSPy 3.4's adapters expect them, for ScriptedTGI."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tgispy.testing import Recorded, Reply

_FIELD = re.compile(r"^\d+\. `(\w+)`", re.MULTILINE)
_QUESTION = re.compile(r"\[\[ ## question ## \]\]\n(.*?)(?:\n\n|$)", re.DOTALL)

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def chat_body(
    text: str | None,
    *,
    finish_reason: str = "stop",
    usage: Mapping[str, int] | None = USAGE,
    model: str = "scripted/model",
    tool_calls: list[dict[str, Any]] | None = None,
    logprobs: Any = None,
) -> dict[str, Any]:
    """A ``/v1/chat/completions`` body as TGI 3.x sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "object": "chat.completion",
        "id": "",
        "created": 1,
        "model": model,
        "system_fingerprint": "3.3.6-dev0-native",
        "choices": [
            {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish_reason}
        ],
    }
    if usage is not None:
        body["usage"] = dict(usage)
    return body


def chat(text: str, **kwargs: Any) -> Reply:
    """A scripted chat completion answering ``text``."""
    return Reply(200, chat_body(text, **kwargs))


def chat_sse(pieces: list[str], *, finish_reason: str = "stop") -> Reply:
    """A streamed chat completion: one chunk per piece, the usage chunk, then ``[DONE]``."""
    chunks: list[Any] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        chunks.append(
            {
                "object": "chat.completion.chunk",
                "model": "scripted/model",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": piece},
                        "finish_reason": finish_reason if last else None,
                    }
                ],
            }
        )
    chunks.append({"object": "chat.completion.chunk", "choices": [], "usage": USAGE})
    chunks.append("[DONE]")
    return Reply(200, sse=tuple(chunks))


def chat_adapter_text(fields: Mapping[str, str]) -> str:
    """What ChatAdapter parses: ``[[ ## field ## ]]`` sections, then ``[[ ## completed ## ]]``."""
    sections = [f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items()]
    return "\n\n".join([*sections, "[[ ## completed ## ]]"])


def output_fields(messages: list[dict[str, Any]]) -> list[str]:
    """The signature's output fields, read from the adapter's system message."""
    system = messages[0]["content"]
    block = system.split("Your output fields are:", 1)[1].split("All interactions", 1)[0]
    return _FIELD.findall(block)


def last_question(messages: list[dict[str, Any]]) -> str:
    """The question of the last user message (demos come before it)."""
    user = [m for m in messages if m["role"] == "user"][-1]["content"]
    match = _QUESTION.search(user)
    assert match is not None, user
    return match.group(1).strip()


class Oracle:
    """Answers DSPy adapter prompts about ``answers`` (question -> answer) like a model would.

    ChainOfThought's ``reasoning`` field gets a short sentence; the reply is JSON when the request
    carries TGI's ``response_format`` grammar (JSONAdapter), ChatAdapter sections otherwise.
    """

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = dict(answers)

    def fields(self, body: Mapping[str, Any]) -> dict[str, str]:
        messages = body["messages"]
        question = last_question(messages)
        values = {}
        for name in output_fields(messages):
            if name == "reasoning":
                values[name] = f"I recall the answer to {question!r}."
            else:
                values[name] = self.answers.get(question, "I do not know")
        return values

    def __call__(self, rec: Recorded) -> Reply:
        if rec.path != "/v1/chat/completions":
            return Reply.error(404, f"unexpected path {rec.path}", "scripted")
        values = self.fields(rec.json)
        if rec.json.get("response_format") is not None:
            return chat(json.dumps(values))
        text = chat_adapter_text(values)
        if rec.json.get("stream"):
            return chat_sse([text[: len(text) // 2], text[len(text) // 2 :]])
        return chat(text)
