"""The DSPy 2.4 prompt template: pure formatting of prompts and parsing of completions.

Everything here is a function of its arguments -- no settings, no LM, no I/O -- and produces the
exact strings DSPy 2.4.17's ``dsp.Template`` produced. The per-signature parts that never change
(field labels, separators, value formatters, the "Follow the following format." section) are
computed once per signature and cached on it.

Prompt layout (parts joined by ``"\\n\\n---\\n\\n"``)::

    <instructions>
    [labeled demos that lack some of the query's fields]   (only when the query is "long")
    Follow the following format.\\n\\n<one line per field: "Prefix: ${desc}">
    <augmented demos, then labeled demos that show every field the query has>
    <the query: the input fields, ending with the prefix of the first missing output field>
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tgispy.signatures._field import edit_count

__all__ = [
    "Template",
    "TemplateField",
    "format_answers",
    "passages2text",
    "template_for",
]

Formatter = Callable[[Any], str]

_PART_SEPARATOR = "\n\n---\n\n"
_GUIDELINES_HEAD = "Follow the following format.\n\n"


def passages2text(passages: Any) -> str:
    """Render retrieved passages: ``[1] «...»\\n[2] «...»``, one passage ``«...»``, none ``N/A``.

    Example:
        >>> passages2text(["Paris is in France.", "Rome is in Italy."])
        '[1] «Paris is in France.»\\n[2] «Rome is in Italy.»'
    """
    if isinstance(passages, str):
        return passages
    if not isinstance(passages, list | tuple):
        return str(passages)
    if len(passages) == 0:
        return "N/A"
    if len(passages) == 1:
        return f"«{passages[0]}»"
    return "\n".join(f"[{idx + 1}] «{txt}»" for idx, txt in enumerate(passages))


def format_answers(answers: Any) -> str:
    """Render an ``answers`` field: the first answer of a list, a string as is (DSPy 2.4)."""
    if isinstance(answers, list):
        if not answers:
            raise ValueError("No answers found")
        return str(answers[0]).strip()
    if isinstance(answers, str):
        return answers
    raise ValueError(f"Unable to parse answers of type {type(answers)}")


def _collapse(value: Any) -> str:
    # DSPy 2.4 required str here (AssertionError otherwise); other values are rendered with str().
    text = value if isinstance(value, str) else str(value)
    return " ".join(text.split())


_BUILTIN_FORMATTERS: dict[str, Formatter] = {
    "context": passages2text,
    "passages": passages2text,
    "answers": format_answers,
}


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One field as the template renders it.

    Attributes:
        key: the field name (``"question"``).
        label: the prefix without trailing whitespace (``"Question:"``).
        separator: what goes between label and value: ``" "``, or the prefix's own trailing
            whitespace (a prefix ending in ``"\\n"`` puts values on the next line).
        description: the ``desc`` shown in the format section (``"${question}"``).
        formatter: renders a value (custom ``format=``, the passages / answers formatters, or
            whitespace collapsing).
    """

    key: str
    label: str
    separator: str
    description: str
    formatter: Formatter

    def render(self, value: Any) -> str:
        formatted = self.formatter(value)
        separator = self.separator
        if separator == " " and "\n" in formatted:
            separator = "\n"
        return f"{self.label}{separator}{formatted}"


class Template:
    """DSPy 2.4's prompt template for one signature: :meth:`format` and :meth:`extract`.

    Args:
        instructions: the task instructions (the signature's docstring).
        fields: ``(key, prefix, desc, format)`` for every field, inputs first.

    Example:
        >>> t = Template("Answer.", [("question", "Question:", "${question}", None),
        ...                          ("answer", "Answer:", "${answer}", None)])
        >>> print(t.format([], {"question": "2+2?"}))
        Answer.
        <BLANKLINE>
        ---
        <BLANKLINE>
        Follow the following format.
        <BLANKLINE>
        Question: ${question}
        Answer: ${answer}
        <BLANKLINE>
        ---
        <BLANKLINE>
        Question: 2+2?
        Answer:
        >>> t.extract({"question": "2+2?"}, " 4")["answer"]
        '4'
    """

    __slots__ = ("_markers", "fields", "guidelines", "instructions", "keys", "long")

    def __init__(
        self,
        instructions: str,
        fields: Sequence[tuple[str, str, str, Formatter | None]],
    ) -> None:
        if not fields:
            raise ValueError("a template needs at least one field")
        built: list[TemplateField] = []
        for key, prefix, desc, fmt in fields:
            stripped = prefix.rstrip()
            separator = " " if stripped == prefix and prefix else prefix[len(stripped) :]
            formatter = fmt or _BUILTIN_FORMATTERS.get(key) or _collapse
            built.append(TemplateField(key, prefix.strip(), separator, desc, formatter))
        self.instructions = instructions
        self.fields: tuple[TemplateField, ...] = tuple(built)
        self.keys: tuple[str, ...] = tuple(f.key for f in built)
        # DSPy's "augmented guidelines": many fields or multi-line labels/descriptions put a
        # blank line between the fields of the format section, the query and augmented demos.
        self.long: bool = len(built) > 3 or any(
            "\n" in f.separator or "\n" in f.description for f in built
        )
        self._markers: tuple[str, ...] = tuple("\n" + f.label for f in built[1:])
        descriptions = {f.key: f.description for f in built}
        self.guidelines = _GUIDELINES_HEAD + self.query(descriptions, augmented=self.long)

    # ---- formatting -----------------------------------------------------------------------
    def query(self, values: Mapping[str, Any], *, augmented: bool, demo: bool = False) -> str:
        """Render ``values`` field by field.

        For a query (``demo=False``) the first field after the last filled one is shown with an
        empty value, so the prompt ends with the label the LM should continue.
        """
        fields = self.fields
        blank = -1
        if not demo:
            filled = [
                f.key in values and values[f.key] is not None and not _is_empty_str(values[f.key])
                for f in fields
            ]
            if not any(filled):
                blank = 0
            else:
                for i in range(1, len(filled)):
                    if filled[i - 1] and not any(filled[i:]):
                        blank = i
                        break
        lines: list[str] = []
        for i, f in enumerate(fields):
            if i == blank:
                lines.append(f.render(""))
            elif f.key in values:
                value = values[f.key]
                if value is not None:
                    lines.append(f.render(value))
        return ("\n\n" if self.long and augmented else "\n").join(lines)

    def format(self, demos: Sequence[Mapping[str, Any]], example: Mapping[str, Any]) -> str:
        """The full prompt for ``example`` (inputs, maybe partial outputs) with ``demos``.

        Demos are mappings (an ``Example``'s store); ``augmented`` demos (bootstrapped) show
        every field, labeled ones only the fields they have.
        """
        last = self.keys[-1]
        # The value of the last field never appears in the query (DSPy: "the training data
        # should not contain the output variable").
        values = {k: v for k, v in example.items() if k != last} if last in example else example

        labeled: list[str] = []
        augmented: list[str] = []
        for demo in demos:
            if demo.get("augmented", False):
                continue
            if demo.get(last) is not None:
                labeled.append(self.query(demo, augmented=False, demo=True))
        for demo in demos:
            if demo.get("augmented", False):
                augmented.append(self.query(demo, augmented=True, demo=True))

        # Labeled demos that show every field the query has are placed like augmented ones.
        present = [f.label for f in self.fields if f.key in values]
        kept: list[str] = []
        for rendered in labeled:
            if all(label in rendered for label in present):
                augmented.append(rendered)
            else:
                kept.append(rendered)

        long_query = self.long
        query = self.query(values, augmented=long_query)
        if not long_query and query.count("\n") + 1 > len(self.fields):
            long_query = True

        kept_text = "\n\n".join(kept)
        parts: list[str]
        if kept_text and not augmented and not long_query:
            parts = [self.instructions, self.guidelines, kept_text + "\n\n" + query]
        elif not kept_text:
            parts = [self.instructions, self.guidelines, *augmented, query]
        else:
            parts = [self.instructions, kept_text, self.guidelines, *augmented, query]
        return _PART_SEPARATOR.join([p.strip() for p in parts if p]).strip()

    __call__ = format

    # ---- parsing --------------------------------------------------------------------------
    def extract(self, example: Mapping[str, Any], completion: str) -> dict[str, Any]:
        """Parse ``completion`` into the fields after the last one ``example`` already has.

        The completion is split at ``"\\n" + <next label>``; the last field takes the rest. A
        completion that stops early leaves the later fields unset.
        """
        out = dict(example)
        keys = self.keys
        n = len(keys)
        idx = 0
        while idx < n and out.get(keys[idx]) is not None:
            idx += 1
        idx = min(idx, n - 1)
        raw = completion.strip()
        markers = self._markers
        while raw and idx < n:
            if idx < n - 1:
                marker = markers[idx]
                offset = raw.find(marker)
                if offset < 0:
                    out[keys[idx]] = raw
                    break
                out[keys[idx]] = raw[:offset].strip()
                raw = raw[offset + len(marker) :].strip()
                idx += 1
            else:
                out[keys[idx]] = raw
                break
        return out


def _is_empty_str(value: Any) -> bool:
    return isinstance(value, str) and value == ""


def template_for(signature: Any) -> Template:
    """The :class:`Template` of a signature class, built once and cached on the class.

    A signature edited in place (``sig.__doc__ = ...``,
    ``sig.fields["answer"].json_schema_extra["prefix"] = ...``) gets a fresh template.
    """
    edits = edit_count()
    cached = signature.__dict__.get("_tgispy_template")
    if cached is not None and cached[0] == edits and cached[1] is signature.__doc__:
        template: Template = cached[3]
        return template
    fields = signature._fields
    fingerprint = (
        signature.__doc__,
        tuple(
            (key, extra.get("prefix"), extra.get("desc"), extra.get("format"))
            for key in [*signature._input_fields, *signature._output_fields]
            for extra in (fields[key].json_schema_extra,)
        ),
    )
    if cached is not None and cached[2] == fingerprint:
        template = cached[3]
    else:
        template = Template(signature.instructions, list(fingerprint[1]))
    type.__setattr__(
        signature, "_tgispy_template", (edits, signature.__doc__, fingerprint, template)
    )
    return template
