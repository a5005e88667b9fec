"""TGI grammars (``json`` schema, ``regex``) → llama.cpp constraints. Pure: no I/O.

llama.cpp (as built in xllamacpp) constrains generation with llguidance: a JSON schema goes in
its ``json_schema`` field and a regex as a Lark rule ``start: /regex/`` in its ``grammar`` field.
llguidance ignores a grammar it cannot compile and generates unconstrained, silently (and a
grammar whose lexer blows up mid-generation stops constraining from that token on), so every
grammar is checked here first and a bad one is TGI's 422 ``grammar is not valid: ...``:

1. Python's regex parser and TGI's own rules (syntax, ``properties``, the JSON-schema metaschema);
2. a bound on how far a regex's counted repeats expand (``((a{99}){99}){99}`` compiles, then
   exhausts llguidance's derivative budget a few tokens in: :data:`MAX_REGEX_EXPANSION`); the
   same bound for every ``pattern`` inside a JSON schema;
3. llguidance's own compiler (the library llama.cpp embeds), which refuses what llama.cpp would
   drop: a 100k-entry ``enum`` (lexer too big), an unresolvable ``$ref``, unsupported syntax.
"""

from __future__ import annotations

import json
import re

# Python's own regex parser (private but stable since 3.11) tells what a pattern uses.
from re import _constants as _sre_constants  # type: ignore[attr-defined]
from re import _parser as _sre_parse  # type: ignore[attr-defined]
from typing import Any, Final

from tgispy.server import _problems as problems
from tgispy.server._types import EngineGrammar
from tgispy.server._validation import GrammarSpec, strict_json_loads

__all__ = ["MAX_REGEX_EXPANSION", "json_grammar", "regex_grammar", "to_engine_grammar"]

#: Largest number of positions a regex may expand to once its counted repeats are unrolled
#: (``a{10000}`` is 10,000, ``(a{99}){99}`` 9,801). Measured on llama.cpp's llguidance: 1e4 costs
#: about 30 ms per token, 9e4 about 90 ms, and 1e6 stops constraining after a few tokens.
MAX_REGEX_EXPANSION: Final = 10_000
_INSTALL_HINT: Final = "pip install 'tgispy[server]'"
_MAX_DETAIL: Final = 300

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


def _expansion(tree: Any, limit: int) -> int:
    """Positions ``tree`` matches once counted repeats are unrolled (stops counting past ``limit``).

    An unbounded repeat counts its minimum once more (``a+`` is 2, ``a{5,}`` is 6): llguidance's
    derivatives stay small for it.
    """
    total = 0
    for op, arg in tree:
        if op in (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT):
            low, high, child = arg
            times = high if high != _sre_constants.MAXREPEAT else low + 1
            size = times * _expansion(child, limit) if times else 0
        elif op == _sre_constants.SUBPATTERN:
            size = _expansion(arg[-1], limit)
        elif op == _sre_constants.BRANCH:
            size = sum(_expansion(branch, limit) for branch in arg[1])
        elif op == _sre_constants.AT:
            size = 0
        else:
            size = 1
        total += size
        if total > limit:
            return total
    return total


def _check_regex(pattern: str, *, strict: bool = True) -> None:
    """Python's parse, llguidance's unsupported constructs and the expansion bound.

    ``strict=False`` (a JSON schema's ECMA-262 ``pattern``): what Python cannot parse is left to
    llguidance's compiler, which knows that dialect.
    """
    try:
        tree = _sre_parse.parse(pattern)
    # re's parser is recursive (deep nesting) and refuses repeats over 2**32 with OverflowError.
    except (re.error, RecursionError, OverflowError) as exc:
        if not strict:
            return
        raise _invalid(f"regex parse error: {exc}") from exc
    unsupported = _walk_unsupported(tree)
    if unsupported:
        raise _invalid(f"regex parse error: {unsupported} are not supported")
    if _expansion(tree, MAX_REGEX_EXPANSION) > MAX_REGEX_EXPANSION:
        raise _invalid(
            "regex is too large: its repeats expand to more than "
            f"{MAX_REGEX_EXPANSION} characters. Given: {pattern[:80]!r}"
        )


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"checking grammars for llama.cpp needs llguidance: {_INSTALL_HINT}"
        ) from exc
    return llguidance


def _compile_check(grammar: str) -> None:
    """Compile ``grammar`` (llguidance's JSON or Lark form) as llama.cpp would; 422 if it fails."""
    error = str(_llguidance().LLMatcher.validate_grammar(grammar) or "")
    if error:
        detail = " ".join(error.split())
        if len(detail) > _MAX_DETAIL:
            detail = detail[: _MAX_DETAIL - 3] + "..."
        raise _invalid(detail)


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
    _check_regex(pattern)
    lark = "%llguidance {}\nstart: " + _lark_regex(pattern)
    _compile_check(lark)
    return EngineGrammar("lark", lark)


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
    for pattern in _schema_patterns(schema):
        _check_regex(pattern, strict=False)
    llguidance = _llguidance()
    _compile_check(llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema)))
    return EngineGrammar("json_schema", schema)


def _schema_patterns(schema: dict[str, Any]) -> list[str]:
    """Every regex in a schema: ``pattern`` values and ``patternProperties`` keys (iterative)."""
    found: list[str] = []
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                found.append(pattern)
            by_pattern = node.get("patternProperties")
            if isinstance(by_pattern, dict):
                found.extend(str(key) for key in by_pattern)
            stack.extend(node.values())
    return found


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
