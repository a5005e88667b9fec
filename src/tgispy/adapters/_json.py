"""Typed outputs: the JSON adapter (one prompt) and the chat adapter (messages). Pure.

A signature with typed outputs (``answer: int``, a pydantic model, ``Literal[...]`` ...) is asked
for a JSON object of its output fields. With a TGI server that supports grammars, the request
carries ``grammar={"type": "json", "value": <schema>}`` (chat: ``response_format``), so the
completion is valid JSON of the right shape by construction; the adapter then validates it into
the declared types. A single output field of a closed type (``Literal``, ``Enum``, ``int``,
``float``, ``bool``) is asked for as a bare value under a ``regex`` grammar instead.

Prompt (text form), built on DSPy 2.4's template so demos and inputs look as they always did::

    <instructions>

    ---

    Follow the following format.

    Question: ${question}
    Output: a JSON object {"answer": integer}

    ---

    Question: What is 2+2?
    Output: {"answer": 4}

    ---

    Question: What is 3+5?
    Output:

Nothing here calls an LM; :mod:`tgispy.predict` sends the requests (see ``predict/_typed.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tgispy.adapters._schema import OutputSpec, SingleField, _jsonable, extract_json, output_spec
from tgispy.adapters._template import Template, format_answers, passages2text
from tgispy.errors import ConfigError, ParseError
from tgispy.signatures._field import edit_count

__all__ = ["ChatAdapter", "Invalid", "JSONAdapter", "TypedPlan"]

Message = dict[str, str]

#: the template key standing for "the JSON object of the outputs" (never a field name: fields
#: cannot start with "_")
_OUTPUT_KEY = "_json_output"
_FORMATTERS: dict[str, Callable[[Any], str]] = {
    "context": passages2text,
    "passages": passages2text,
    "answers": format_answers,
}


def _value_text(value: Any) -> str:
    # Strings as DSPy 2.4 rendered them (whitespace collapsed); anything else as JSON, so typed
    # inputs (lists, dicts, pydantic models) read the way typed outputs are written.
    if isinstance(value, str):
        return " ".join(value.split())
    return json.dumps(_jsonable(value), ensure_ascii=False)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class Invalid:
    """A completion that did not parse: why (one line, shown to the model on a retry) and what."""

    detail: str
    completion: str


class TypedPlan:
    """How one signature is asked for its typed outputs: prompt or messages, grammar, parsing.

    Built by :meth:`JSONAdapter.plan`; every method is pure.

    Attributes:
        signature: the signature class.
        spec: its :class:`~tgispy.adapters._schema.OutputSpec`.
        chat: whether requests are chat messages (else one prompt string).
        single: the single-field regex form, or ``None`` for a JSON object.
    """

    __slots__ = ("_inputs", "_label", "_template", "chat", "signature", "single", "spec")

    def __init__(self, signature: Any, spec: OutputSpec, *, chat: bool, regex: bool) -> None:
        self.signature = signature
        self.spec = spec
        self.chat = chat
        self.single: SingleField | None = spec.single if regex and not chat else None
        fields = signature._input_fields
        self._inputs: list[tuple[str, str, str, Callable[[Any], str]]] = [
            (
                key,
                field.json_schema_extra.get("prefix") or f"{key}:",
                field.json_schema_extra.get("desc") or f"${{{key}}}",
                field.json_schema_extra.get("format") or _FORMATTERS.get(key) or _value_text,
            )
            for key, field in fields.items()
        ]
        prefixes = {prefix.strip() for _, prefix, _, _ in self._inputs}
        self._label = "Output:" if "Output:" not in prefixes else "JSON Output:"
        self._template = self._build_template()

    # ---- what the model is told ------------------------------------------------------------
    @property
    def format_hint(self) -> str:
        """What the answer must look like (``a JSON object {...}`` / ``one of: a, b``)."""
        if self.single is not None:
            return self.single.hint
        return f"a JSON object {self.spec.sketch}"

    def _instructions(self) -> str:
        text = self.signature.instructions
        if self.single is None and self.spec.descriptions:
            lines = "\n".join(f"- {key}: {desc}" for key, desc in self.spec.descriptions)
            text = f"{text}\n\nOutput fields:\n{lines}" if text else f"Output fields:\n{lines}"
        return str(text)

    def _build_template(self) -> Template:
        fields: list[tuple[str, str, str, Callable[[Any], str] | None]] = [
            (key, prefix, desc, fmt) for key, prefix, desc, fmt in self._inputs
        ]
        single = self.single
        if single is not None:
            out_field = self.signature._output_fields[single.key]
            prefix = out_field.json_schema_extra.get("prefix") or f"{single.key}:"
            custom = dict(self.spec.descriptions).get(single.key)
            desc = f"{custom} ({single.hint})" if custom else single.hint
            fields.append((single.key, prefix, desc, single.render))
        else:
            fields.append((_OUTPUT_KEY, self._label, self.format_hint, str))
        return Template(self._instructions(), fields)

    def _demo_row(self, demo: Mapping[str, Any]) -> dict[str, Any] | None:
        """A demo as the template's field values; ``None`` when it shows no output."""
        row: dict[str, Any] = {key: demo[key] for key, *_ in self._inputs if key in demo}
        if demo.get("augmented", False):
            row["augmented"] = True
        if self.single is not None:
            value = demo.get(self.single.key)
            if value is None:
                return None
            row[self.single.key] = value
            return row
        outputs = self.spec.dump(demo)
        if not outputs:
            return None
        row[_OUTPUT_KEY] = _dumps(outputs)
        return row

    def prompt(self, demos: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]) -> str:
        """The text prompt: instructions, format, demos, then the inputs up to the output label."""
        rows = [row for row in map(self._demo_row, demos) if row is not None]
        query = {key: inputs[key] for key, *_ in self._inputs if key in inputs}
        return self._template.format(rows, query)

    def _user_content(self, values: Mapping[str, Any]) -> str:
        lines = []
        for key, prefix, _, fmt in self._inputs:
            if key in values and values[key] is not None:
                text = fmt(values[key])
                sep = "\n" if "\n" in text or prefix.endswith("\n") else " "
                lines.append(f"{prefix.strip()}{sep}{text}")
        return "\n".join(lines)

    def messages(
        self, demos: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]
    ) -> list[Message]:
        """Chat messages: a system message with instructions and the JSON shape, demos as
        user/assistant turns, the inputs as the last user message."""
        system = f"{self._instructions()}\n\nReply with only {self.format_hint}.".strip()
        out: list[Message] = [{"role": "system", "content": system}]
        for demo in demos:
            outputs = self.spec.dump(demo)
            user = self._user_content(demo)
            if outputs and user:
                out.append({"role": "user", "content": user})
                out.append({"role": "assistant", "content": _dumps(outputs)})
        out.append({"role": "user", "content": self._user_content(inputs)})
        return out

    # ---- grammar ---------------------------------------------------------------------------
    def grammar(self) -> dict[str, Any]:
        """TGI's ``grammar`` for ``/generate``: the JSON schema, or the single field's regex.

        The regex allows one leading space (after ``Label:`` a model naturally writes one) and
        one final newline: a model that may only end with its end-of-sequence token keeps adding
        digits to a number rather than stop.
        """
        if self.single is not None:
            return {"type": "regex", "value": f" ?{self.single.regex}\\n?"}
        return {"type": "json", "value": self.spec.schema}

    def response_format(self) -> dict[str, Any]:
        """The chat API's ``response_format`` (TGI's form: ``{"type": "json", "value": ...}``)."""
        return {"type": "json", "value": self.spec.schema}

    # ---- parsing ---------------------------------------------------------------------------
    def check(self, completion: str) -> dict[str, Any] | Invalid:
        """The typed output values of ``completion``, or why it does not parse."""
        try:
            if self.single is None:
                return self.spec.validate(extract_json(completion))
            first, *lenient = _bare_values(completion)
            try:
                return self.spec.validate_single(first)
            except ParseError:
                for candidate in lenient:
                    try:
                        return self.spec.validate_single(candidate)
                    except ParseError:
                        continue
                raise
        except ParseError as exc:
            return Invalid(exc.message, completion)

    def error(self, invalid: Invalid) -> ParseError:
        """The :class:`~tgispy.errors.ParseError` for a completion that did not parse."""
        return ParseError(
            f"the LM's output for {self.signature.__name__} is not {self.format_hint}: "
            f"{invalid.detail}. Completion: {invalid.completion[:300]!r}",
            completion=invalid.completion,
        )

    def parse(self, completion: str) -> dict[str, Any]:
        """The typed output values of ``completion``.

        Raises:
            ParseError: it does not parse or validate; ``.completion`` holds the raw text.
        """
        result = self.check(completion)
        if isinstance(result, Invalid):
            raise self.error(result)
        return result

    # ---- one retry that shows the error ----------------------------------------------------
    def _feedback(self, invalid: Invalid) -> str:
        return (
            f"That output is not valid: {invalid.detail}. "
            f"Write it again as {self.format_hint}, nothing else."
        )

    def retry_prompt(self, prompt: str, invalid: Invalid) -> str:
        """``prompt`` continued with the bad completion, the error, and the output label again."""
        last_label = prompt.rsplit("\n", 1)[-1]
        return f"{prompt} {invalid.completion.strip()}\n\n{self._feedback(invalid)}\n\n{last_label}"

    def retry_messages(self, messages: Sequence[Message], invalid: Invalid) -> list[Message]:
        """``messages`` plus the bad reply and a user turn naming the error."""
        return [
            *messages,
            {"role": "assistant", "content": invalid.completion},
            {"role": "user", "content": self._feedback(invalid)},
        ]


def _bare_values(completion: str) -> list[str]:
    """Readings of a bare value, strictest first: the first line as is, then without the quotes
    and final period a model writing without a grammar may add (``"neg".`` -> ``neg``)."""
    text = completion.strip().split("\n", 1)[0].strip()
    out = [text]
    for _ in range(2):
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
            text = text[1:-1].strip()
            out.append(text)
        if text.endswith("."):
            text = text[:-1].rstrip()
            out.append(text)
    return out


class JSONAdapter:
    """Ask for typed outputs as JSON (or a bare constrained value), constrained by TGI grammars.

    ``Predict`` uses it automatically for signatures with typed outputs; pass
    ``adapter="json"`` (or an instance) to use it for any signature.

    Args:
        chat: ``None`` follows the LM (chat messages when it was made with ``mode="chat"``),
            ``True`` always sends chat messages, ``False`` always one prompt.
        grammar: send TGI's ``grammar`` / ``response_format`` when the server supports it.
            ``False`` always parses plain text (with one retry that shows the error).
        regex: ask for a single ``Literal`` / ``Enum`` / ``int`` / ``float`` / ``bool`` output
            as a bare value under a ``regex`` grammar (``False``: a JSON object as for the rest).

    Example:
        >>> from tgispy import Signature
        >>> adapter, qa = JSONAdapter(), Signature("question -> answer: int, unit")
        >>> adapter.format(qa, [], {"question": "2+2?"}).splitlines()[-1]
        'Output:'
        >>> adapter.parse(qa, {"question": "2+2?"}, '{"answer": 4, "unit": "apples"}')["answer"]
        4
    """

    def __init__(self, *, chat: bool | None = None, grammar: bool = True, regex: bool = True):
        for name, value in (("grammar", grammar), ("regex", regex)):
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be True or False, got {value!r}")
        if chat not in (None, True, False):
            raise ConfigError(f"chat must be None, True or False, got {chat!r}")
        self.chat = chat
        self.use_grammar = grammar
        self.regex = regex

    def plan(self, signature: Any, *, chat: bool | None = None) -> TypedPlan:
        """The :class:`TypedPlan` for ``signature`` (cached per signature class).

        Args:
            signature: a signature class.
            chat: chat messages or one prompt (default: this adapter's ``chat``, else a prompt).

        Raises:
            ConfigError: an output type that cannot be validated or described as JSON.
        """
        use_chat = bool(self.chat if chat is None else chat)
        regex = self.regex and not use_chat
        fingerprint = (
            edit_count(),
            signature.__doc__,
            tuple(
                (key, f.annotation, *(f.json_schema_extra.get(k) for k in ("prefix", "desc")))
                for key, f in signature._fields.items()
            ),
            tuple(id(f.json_schema_extra.get("format")) for f in signature._fields.values()),
        )
        cache: dict[tuple[bool, bool], Any] | None = signature.__dict__.get("_tgispy_typed_plans")
        if cache is None:
            cache = {}
            type.__setattr__(signature, "_tgispy_typed_plans", cache)
        hit = cache.get((use_chat, regex))
        if hit is not None and hit[0] == fingerprint:
            plan: TypedPlan = hit[1]
            return plan
        plan = TypedPlan(signature, output_spec(signature), chat=use_chat, regex=regex)
        cache[(use_chat, regex)] = (fingerprint, plan)
        return plan

    # ---- the Adapter protocol (text form) ----------------------------------------------------
    def format(
        self, signature: Any, demos: Sequence[Mapping[str, Any]], example: Mapping[str, Any]
    ) -> str:
        """The prompt for ``example``'s inputs with ``demos`` (output values in it are ignored)."""
        return self.plan(signature, chat=False).prompt(demos, example)

    def format_messages(
        self, signature: Any, demos: Sequence[Mapping[str, Any]], example: Mapping[str, Any]
    ) -> list[Message]:
        """The chat messages for ``example``'s inputs with ``demos``."""
        return self.plan(signature, chat=True).messages(demos, example)

    def parse(self, signature: Any, example: Mapping[str, Any], completion: str) -> dict[str, Any]:
        """``example`` plus the typed outputs parsed from ``completion``.

        Raises:
            ParseError: the completion does not parse or validate (``.completion`` is the text).
        """
        plan = self.plan(signature, chat=False)
        result = plan.check(completion)
        if isinstance(result, Invalid):
            error = plan.error(result)
            error.invalid = result  # type: ignore[attr-defined]  # read back by check()
            raise error
        return {**example, **result}

    def check(
        self,
        signature: Any,
        example: Mapping[str, Any],
        completion: str,
        *,
        chat: bool = False,
    ) -> dict[str, Any] | Invalid:
        """The typed output values of ``completion``, or why it does not parse.

        Text completions go through :meth:`parse`, so a subclass that overrides ``parse`` is
        honoured (its ``ParseError`` / ``ValueError`` message becomes the reason shown to the
        model on a retry); chat replies are read by the plan.

        Example:
            >>> from tgispy import Signature
            >>> JSONAdapter().check(Signature("q -> a: int"), {}, " 4")
            {'a': 4}
        """
        if chat:
            return self.plan(signature, chat=True).check(completion)
        try:
            values = self.parse(signature, example, completion)
        except ParseError as exc:
            invalid = getattr(exc, "invalid", None)
            return invalid if isinstance(invalid, Invalid) else Invalid(exc.message, completion)
        except ValueError as exc:
            return Invalid(str(exc), completion)
        return {key: values[key] for key in signature.output_fields if key in values}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(chat={self.chat!r}, grammar={self.use_grammar!r}, "
            f"regex={self.regex!r})"
        )


class ChatAdapter(JSONAdapter):
    """Typed outputs over TGI's chat API (``/v1/chat/completions``) with ``response_format``.

    The signature becomes a system message (instructions and the JSON shape), demos become
    user / assistant turns and the inputs the last user message. Needs an LM with a chat API
    (``HFClientTGI``).

    Args:
        grammar: send ``response_format`` with the JSON schema when the server supports it.

    Example:
        >>> from tgispy import Signature
        >>> messages = ChatAdapter().format_messages(Signature("question -> answer: int"), [],
        ...                                          {"question": "2+2?"})
        >>> [m["role"] for m in messages], messages[-1]["content"]
        (['system', 'user'], 'Question: 2+2?')
    """

    def __init__(self, *, grammar: bool = True) -> None:
        super().__init__(chat=True, grammar=grammar, regex=False)

    def __repr__(self) -> str:
        return f"ChatAdapter(grammar={self.use_grammar!r})"
