"""TGI grammars (``json`` schema, ``regex``) → llama.cpp constraints. Pure: no I/O.

llama.cpp (as built in xllamacpp) constrains generation with llguidance: a JSON schema goes in
its ``json_schema`` field and a regex as a Lark rule ``start: /regex/`` in its ``grammar`` field.
llguidance ignores a grammar it cannot compile and generates unconstrained, silently, so every
grammar is checked here first and a bad one is TGI's 422 ``grammar is not valid: ...``.
"""

from __future__ import annotations

import re

# Python's own regex parser (private but stable since 3.11) tells what a pattern uses.
from re import _constants as _sre_constants  # type: ignore[attr-defined]
from re import _parser as _sre_parse  # type: ignore[attr-defined]
from typing import Any, Final

from tgispy.server import _problems as problems
from tgispy.server._types import EngineGrammar
from tgispy.server._validation import GrammarSpec, strict_json_loads

__all__ = ["to_engine_grammar"]

#: Python regex features that the Rust ``regex`` crate (used by llguidance) lacks.
_UNSUPPORTED_OPS: Final = {
    _sre_constants.ASSERT: "look-around assertions",
    _sre_constants.ASSERT_NOT: "look-around assertions",
    _sre_constants.GROUPREF: "backreferences",
    _sre_constants.GROUPREF_EXISTS: "conditional groups",
}
for _name, _what in (
    ("ATOMIC_GROUP", "atomic groups"),
    ("POSSESSIVE_REPEAT", "possessive repeats"),
):
    if hasattr(_sre_constants, _name):
        _UNSUPPORTED_OPS[getattr(_sre_constants, _name)] = _what


def _invalid(detail: str) -> problems.Problem:
    return problems.validation(f"grammar is not valid: {detail}")


def _walk_unsupported(tree: Any) -> str | None:
    """The first construct of a parsed regex that llguidance cannot compile, if any."""
    for op, arg in tree:
        if op in _UNSUPPORTED_OPS:
            return str(_UNSUPPORTED_OPS[op])
        children: list[Any] = []
        if op in (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT):
            children.append(arg[2])
        elif op == _sre_constants.SUBPATTERN:
            children.append(arg[-1])
        elif op == _sre_constants.BRANCH:
            children.extend(arg[1])
        for child in children:
            found = _walk_unsupported(child)
            if found:
                return found
    return None


def _lark_regex(pattern: str) -> str:
    """Quote ``pattern`` as a Lark ``/.../`` literal (escape ``/`` and raw newlines)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "/":
            out.append("\\/")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        else:
            out.append(ch)
        i += 1
    return "/" + "".join(out) + "/"


def regex_grammar(pattern: str) -> EngineGrammar:
    """A llguidance grammar whose whole output matches ``pattern`` (TGI's ``regex`` grammar).

    Example:
        >>> regex_grammar("[0-9]+").value
        '%llguidance {}\\nstart: /[0-9]+/'
    """
    if not pattern:
        raise _invalid("the regex is empty")
    try:
        tree = _sre_parse.parse(pattern)
    # re's parser is recursive (deep nesting) and refuses repeats over 2**32 with OverflowError.
    except (re.error, RecursionError, OverflowError) as exc:
        raise _invalid(f"regex parse error: {exc}") from exc
    unsupported = _walk_unsupported(tree)
    if unsupported:
        raise _invalid(f"regex parse error: {unsupported} are not supported")
    return EngineGrammar("lark", "%llguidance {}\nstart: " + _lark_regex(pattern))


def _schema(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = strict_json_loads(value)
        except ValueError as exc:
            raise _invalid(str(exc)) from exc
    if not isinstance(value, dict):
        raise _invalid("the JSON schema must be an object")
    return value


def json_grammar(value: Any) -> EngineGrammar:
    """TGI's ``json`` grammar: a schema (object or JSON string) that must have ``properties``.

    Example:
        >>> json_grammar({"properties": {"a": {"type": "integer"}}}).kind
        'json_schema'
    """
    schema = _schema(value)
    # TGI's own rule (router/src/validation.rs): its grammar compiler needs `properties`.
    if "properties" not in schema:
        raise _invalid("Grammar must have a 'properties' field")
    _check_schema(schema)
    return EngineGrammar("json_schema", schema)


def _check_schema(schema: dict[str, Any]) -> None:
    """Refuse a schema its own metaschema rejects (``"type": "wat"``, ``"required": 5``...).

    llguidance would ignore it and generate unconstrained text with a 200; TGI's compiler
    refuses it with a 422.
    """
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "checking JSON-schema grammars needs jsonschema: pip install 'jsonschema>=4.20'"
        ) from exc
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise _invalid(f"invalid JSON schema: {exc.message}") from exc


def to_engine_grammar(spec: GrammarSpec | None) -> EngineGrammar | None:
    """Check a request's grammar and translate it for llama.cpp.

    Raises:
        Problem: 422 ``grammar is not valid: <detail>``.
    """
    if spec is None:
        return None
    if spec.type == "regex":
        return regex_grammar(str(spec.value))
    if spec.type == "json_schema":
        return json_grammar(spec.value["schema"])
    return json_grammar(spec.value)
