"""Regular expressions and choice lists as llama.cpp GBNF grammars (pure).

llama.cpp takes no regex, only GBNF (``grammar``). The typed-output layer asks for a regex when a
signature has one closed scalar output (``-?(0|[1-9][0-9]{0,17})``, ``(yes|no)``); this module
translates that regex subset: literals, escapes (``\\d \\w \\s \\n`` and escaped
metacharacters), ``.``, character classes, groups (``(...)``, ``(?:...)``), alternation and the
quantifiers ``? * + {m} {m,} {m,n}``. Anything else (look-arounds, back-references) is a
:class:`~tgispy.errors.ConfigError`.
GBNF reference: ``ggml-org/llama.cpp@0c1e57098:grammars/README.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tgispy.errors import ConfigError

__all__ = ["choice_to_gbnf", "regex_to_gbnf"]

_CLASS_ESCAPES = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\r"}
_LITERAL_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _literal(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{out}"'


def _is_literal(item: str) -> bool:
    return len(item) >= 2 and item[0] == '"' and item[-1] == '"' and not item.endswith('\\"')


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0

    def fail(self, why: str) -> ConfigError:
        return ConfigError(
            f"cannot turn the regex {self.src!r} into a llama.cpp grammar: {why} at position "
            f"{self.pos}; pass a GBNF grammar (Constraint('grammar', ...)) instead"
        )

    def peek(self) -> str | None:
        return self.src[self.pos] if self.pos < len(self.src) else None

    def alternation(self) -> str:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.sequence())
        return " | ".join(b or '""' for b in branches)

    def sequence(self) -> str:
        items: list[str] = []
        while (ch := self.peek()) is not None and ch not in "|)":
            atom = self.atom()
            if not atom:
                continue
            quantifier = self.quantifier()
            if not quantifier and _is_literal(atom) and items and _is_literal(items[-1]):
                items[-1] = items[-1][:-1] + atom[1:]  # "a" "b" -> "ab"
            else:
                items.append(atom + quantifier)
        return " ".join(items)

    def atom(self) -> str:
        ch = self.src[self.pos]
        self.pos += 1
        if ch == "(":
            if self.src.startswith("?:", self.pos):
                self.pos += 2
            elif self.peek() == "?":
                raise self.fail("look-arounds and named groups are not supported")
            inner = self.alternation()
            if self.peek() != ")":
                raise self.fail("unbalanced parenthesis")
            self.pos += 1
            return f"({inner})"
        if ch == "[":
            return self.char_class()
        if ch == "\\":
            return self.escape(in_class=False)
        if ch == ".":
            return "[^\\n]"
        if ch in "^$":
            if self.pos - 1 in (0, len(self.src) - 1):
                return ""  # anchors at the ends: the grammar always matches the whole output
            raise self.fail("anchors inside the pattern are not supported")
        if ch in "*+?{":
            raise self.fail(f"quantifier {ch!r} without anything to repeat")
        return _literal(ch)

    def escape(self, *, in_class: bool) -> str:
        if self.pos >= len(self.src):
            raise self.fail("trailing backslash")
        ch = self.src[self.pos]
        self.pos += 1
        if ch in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[ch] if in_class else f"[{_CLASS_ESCAPES[ch]}]"
        if ch.isalnum() and ch not in _LITERAL_ESCAPES:
            raise self.fail(f"escape \\{ch} is not supported")
        if in_class:
            return {"n": "\\n", "t": "\\t", "r": "\\r"}.get(ch, "\\" + ch if ch in "]\\^-" else ch)
        return _literal(_LITERAL_ESCAPES.get(ch, ch))

    def char_class(self) -> str:
        parts = ["["]
        if self.peek() == "^":
            parts.append("^")
            self.pos += 1
        first = True
        while True:
            ch = self.peek()
            if ch is None:
                raise self.fail("unterminated character class")
            if ch == "]" and not first:
                self.pos += 1
                break
            self.pos += 1
            if ch == "\\":
                parts.append(self.escape(in_class=True))
            elif ch == '"':
                parts.append('\\"')
            elif ch == "\n":
                parts.append("\\n")
            else:
                parts.append(ch)
            first = False
        parts.append("]")
        return "".join(parts)

    def quantifier(self) -> str:
        ch = self.peek()
        if ch in ("?", "*", "+"):
            self.pos += 1
            if self.peek() in ("?", "+"):
                raise self.fail("lazy and possessive quantifiers are not supported")
            return ch or ""
        if ch == "{":
            end = self.src.find("}", self.pos)
            body = self.src[self.pos + 1 : end] if end > 0 else ""
            low, _, high = body.partition(",")
            if end < 0 or not low.isdigit() or (high and not high.isdigit()):
                raise self.fail("malformed {m,n} repetition")
            self.pos = end + 1
            return "{" + body + "}"
        return ""


def regex_to_gbnf(pattern: str) -> str:
    """A GBNF grammar whose language is ``pattern``'s (for the regex subset above).

    Example:
        >>> print(regex_to_gbnf(r"-?(0|[1-9][0-9]{0,17})"))
        root ::= "-"? ("0" | [1-9] [0-9]{0,17})
    """
    parser = _Parser(pattern)
    expr = parser.alternation()
    if parser.pos != len(pattern):
        raise parser.fail("unbalanced parenthesis")
    return f"root ::= {expr or chr(34) * 2}"


def choice_to_gbnf(choices: Sequence[str]) -> str:
    """A GBNF grammar matching exactly one of ``choices``.

    Example:
        >>> print(choice_to_gbnf(["yes", "no"]))
        root ::= "yes" | "no"
    """
    if not choices:
        raise ConfigError("a choice constraint needs at least one choice")
    return "root ::= " + " | ".join(_literal(str(c)) for c in choices)
