"""atheris: the server's request side -- body decoding, deserialisation, validation, grammars.

Everything ``tgispy serve`` does to a request body before the engine sees it is pure; for any
bytes it must end in a request or a ``Problem`` with a 4xx status (never a 5xx, never a bare
exception, which aiohttp would answer with a 500).

Run: ``python fuzz/fuzz_server_request.py /tmp/tgispy-fuzz/server -max_total_time=60``
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import atheris
from _common import seed_corpus

with atheris.instrument_imports(include=["tgispy"]):
    from tgispy.server._grammar import to_engine_grammar
    from tgispy.server._problems import Problem
    from tgispy.server._validation import (
        Limits,
        check_best_of,
        check_stream_params,
        decode_body,
        parse_chat,
        parse_completion,
        parse_generate,
        resolve_lengths,
        validate,
    )

LIMITS = Limits()


def seeds() -> Iterator[bytes]:
    yield (
        b"\x00"
        + json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 5, "stop": ["\n"]}}).encode()
    )
    yield (
        b"\x00"
        + json.dumps(
            {
                "inputs": "Hi",
                "parameters": {
                    "grammar": {"type": "json", "value": {"properties": {"a": {"type": "integer"}}}}
                },
            }
        ).encode()
    )
    yield (
        b"\x00"
        + json.dumps(
            {"inputs": "Hi", "parameters": {"grammar": {"type": "regex", "value": "[0-9]+"}}}
        ).encode()
    )
    yield (
        b"\x01"
        + json.dumps(
            {
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 3,
                "response_format": {"type": "json_object", "value": {"properties": {}}},
            }
        ).encode()
    )
    yield b"\x02" + json.dumps({"prompt": ["a", "b"], "max_tokens": 2, "stop": ["x"]}).encode()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    route, raw = data[0] % 3, data[1:]
    try:
        body = decode_body(raw)
        if route == 0:
            req = parse_generate(body, compat=bool(data[0] & 4))
            check_best_of(req.parameters, LIMITS)
            check_stream_params(req.parameters)
            prompts, params = [req.inputs], req.parameters
        elif route == 1:
            chat = parse_chat(body)
            prompts, params = ["\n".join(m["content"] for m in chat.messages)], chat.parameters
        else:
            completion = parse_completion(body)
            prompts, params = completion.prompts, completion.parameters
        for prompt in prompts:
            validated = validate(prompt, params, LIMITS)
            to_engine_grammar(validated.grammar)
            resolve_lengths(len(prompt), validated.max_new_tokens, LIMITS)
    except Problem as problem:
        if not 400 <= problem.status < 500:
            raise AssertionError(f"a {problem.status}: {problem.message}") from problem


def main() -> None:
    seed_corpus(sys.argv, seeds)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
