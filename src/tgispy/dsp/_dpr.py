"""DPR's answer matching (``dsp.utils.dpr``): tokenize like DPR's ``SimpleTokenizer``.

DPR's tokenizer is the regex ``([\\p{L}\\p{N}\\p{M}]+)|([^\\p{Z}\\p{C}])``: runs of letters, digits
and marks, or any other single character that is neither a separator nor a control character.
The same rule is written here over :mod:`unicodedata` categories, so no ``regex`` package is
needed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

__all__ = ["DPR_normalize", "DPR_tokenize", "has_answer", "locate_answers", "strip_accents"]

Token = tuple[str, tuple[int, int]]


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM"


def _is_other_token(ch: str) -> bool:
    return unicodedata.category(ch)[0] not in "ZC"


def DPR_tokenize(text: str) -> list[Token]:
    """The tokens of NFD-normalized ``text`` with their character spans.

    Example:
        >>> [t for t, _ in DPR_tokenize("Hello, world!")]
        ['Hello', ',', 'world', '!']
    """
    text = unicodedata.normalize("NFD", text)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if _is_word_char(ch):
            j = i + 1
            while j < n and _is_word_char(text[j]):
                j += 1
            tokens.append((text[i:j], (i, j)))
            i = j
        else:
            if _is_other_token(ch):
                tokens.append((ch, (i, i + 1)))
            i += 1
    return tokens


def DPR_normalize(text: str) -> list[str]:
    """The lower-cased DPR tokens of ``text``.

    Example:
        >>> DPR_normalize("The Eiffel-Tower")
        ['the', 'eiffel', '-', 'tower']
    """
    return [token.lower() for token, _ in DPR_tokenize(text)]


def has_answer(tokenized_answers: Sequence[Sequence[str]], text: str) -> bool:
    """Whether any answer's tokens occur contiguously in ``text``'s tokens.

    Example:
        >>> has_answer([DPR_normalize("Eiffel Tower")], "It is the Eiffel tower.")
        True
    """
    words = DPR_normalize(text)
    for tokens in tokenized_answers:
        answer = list(tokens)
        for i in range(0, len(words) - len(answer) + 1):
            if answer == words[i : i + len(answer)]:
                return True
    return False


def locate_answers(tokenized_answers: Sequence[Sequence[str]], text: str) -> list[tuple[int, int]]:
    """Every occurrence of an answer in ``text`` as ``(start, end)`` character offsets."""
    tokens = DPR_tokenize(text)
    words = [t.lower() for t, _ in tokens]
    occurrences: list[tuple[int, int]] = []
    for answer_tokens in tokenized_answers:
        answer = [a.lower() for a in answer_tokens]
        for i in range(0, len(words) - len(answer) + 1):
            if answer and answer == words[i : i + len(answer)]:
                occurrences.append((tokens[i][1][0], tokens[i + len(answer) - 1][1][1]))
    return occurrences


def strip_accents(text: str) -> str:
    """``text`` without combining marks.

    Example:
        >>> strip_accents("café")
        'cafe'
    """
    return "".join(
        ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn"
    )
