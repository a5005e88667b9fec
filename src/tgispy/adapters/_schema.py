"""The typed outputs of a signature: JSON schema, compact sketch, regex, validation. Pure.

:func:`output_spec` turns a signature's output fields into an :class:`OutputSpec`: the JSON schema
TGI's ``grammar`` constrains decoding with, a short type sketch the prompt shows the model
(``{"answer": integer, "label": "yes" | "no"}``), and a validator that parses a decoded JSON object
into the declared types (``int``, ``float``, ``bool``, ``str``, ``list[...]``, ``dict``,
``Literal``, ``Enum``, pydantic models, ``Optional``). A single output field of a small closed type
(``Literal``, ``Enum``, ``int``, ``float``, ``bool``) also gets a :class:`SingleField`: a regex its
bare value must match, for TGI's ``regex`` grammar.

pydantic does the validation and the schema; it is imported the first time a typed signature is
used, never by ``import tgispy``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from tgispy.errors import ConfigError, ParseError
from tgispy.signatures._field import edit_count
from tgispy.signatures._signature import infer_prefix
from tgispy.signatures._types import output_annotations

__all__ = [
    "OutputSpec",
    "SingleField",
    "describe_errors",
    "extract_json",
    "output_spec",
    "schema_sketch",
]

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
#: at most this many validation problems are listed in an error message
_MAX_ERRORS = 3
#: characters a regex alternative must escape (kept minimal: llguidance reads Rust regex syntax)
_REGEX_META = frozenset("\\.^$|?*+()[]{}/")
_SUBSCHEMA_KEYS = frozenset(
    {"items", "prefixItems", "additionalProperties", "not", "anyOf", "oneOf", "allOf"}
)
_INT_REGEX = r"-?(0|[1-9][0-9]{0,17})"
_FLOAT_REGEX = r"-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,10})?"


def _regex_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


# ---- JSON schema post-processing -----------------------------------------------------------------
def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``$ref`` to ``$defs`` by the definitions (smaller prompts, simpler grammars).

    A recursive model cannot be inlined; its schema is returned unchanged.
    """
    defs: Mapping[str, Any] = schema.get("$defs", {})
    if not defs:
        return schema

    class _Recursive(Exception):
        pass

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref[len("#/$defs/") :]
            if name in stack:
                raise _Recursive
            target = walk(defs[name], (*stack, name))
            rest = {k: walk(v, stack) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}
        return {k: walk(v, stack) for k, v in node.items() if k != "$defs"}

    try:
        out: dict[str, Any] = walk(schema, ())
    except _Recursive:
        return schema
    return out


def _tidy(node: Any) -> Any:
    """Drop ``title`` keywords and close objects (``additionalProperties: false``).

    Only schema nodes are touched: a property *named* ``title`` stays.
    """
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: _tidy(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_KEYS:
            out[key] = _tidy(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        # Keys the signature does not declare would be dropped by validation anyway; keeping the
        # grammar closed stops a small model from spending tokens on them.
        out["additionalProperties"] = False
    return out


def schema_sketch(node: Any) -> str:
    """A compact, JSON-like rendering of a schema for prompts.

    Example:
        >>> schema_sketch({"type": "object", "properties": {"n": {"type": "integer"},
        ...     "tags": {"type": "array", "items": {"type": "string"}},
        ...     "label": {"enum": ["yes", "no"]}}})
        '{"n": integer, "tags": [string, ...], "label": "yes" | "no"}'
    """
    if not isinstance(node, dict):
        return "any"
    if "const" in node:
        return json.dumps(node["const"], ensure_ascii=False)
    if "enum" in node:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " | ".join(schema_sketch(sub) for sub in node[key])
    if "allOf" in node and len(node["allOf"]) == 1:
        return schema_sketch(node["allOf"][0])
    if "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    kind = node.get("type")
    if isinstance(kind, list):
        return " | ".join(schema_sketch({**node, "type": k}) for k in kind)
    if kind == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(schema_sketch(s) for s in node["prefixItems"]) + "]"
        items = node.get("items")
        return "[" + (schema_sketch(items) if items else "any") + ", ...]"
    if kind == "object" or "properties" in node:
        props = node.get("properties")
        if props:
            inner = ", ".join(
                f"{json.dumps(name, ensure_ascii=False)}: {schema_sketch(sub)}"
                for name, sub in props.items()
            )
            return "{" + inner + "}"
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return "{string: " + schema_sketch(extra) + ", ...}"
        return "object"
    if isinstance(kind, str):
        return {"boolean": "true | false"}.get(kind, kind)
    return "any"


# ---- single constrained field (regex) -----------------------------------------------------------
@dataclass(frozen=True)
class SingleField:
    """The one output field of a signature whose bare value a regex can pin down.

    Attributes:
        key: the field name.
        regex: the pattern the whole value matches (TGI ``regex`` grammar).
        hint: what the prompt says the value is (``one of: yes, no``, ``an integer``).
        json_value: whether the value is a JSON literal (numbers, booleans) rather than text.
    """

    key: str
    regex: str
    hint: str
    json_value: bool

    def render(self, value: Any) -> str:
        """A value as the model should write it (demos)."""
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _choices_field(key: str, values: list[Any]) -> SingleField | None:
    if not values:
        return None
    if all(isinstance(v, str) for v in values):
        texts = [str(v) for v in values]
        if any(not t or "\n" in t for t in texts):
            return None
        regex = "(" + "|".join(_regex_escape(t) for t in texts) + ")"
        return SingleField(key, regex, "one of: " + ", ".join(texts), json_value=False)
    if all(isinstance(v, bool) for v in values):
        texts = ["true" if v else "false" for v in values]
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        texts = [str(v) for v in values]
    else:
        return None  # mixed kinds: the JSON grammar handles them
    regex = "(" + "|".join(_regex_escape(t) for t in texts) + ")"
    return SingleField(key, regex, "one of: " + ", ".join(texts), json_value=True)


def _single_field(key: str, annotation: Any) -> SingleField | None:
    if get_origin(annotation) is Literal:
        return _choices_field(key, list(get_args(annotation)))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _choices_field(key, [member.value for member in annotation])
    if annotation is bool:
        return SingleField(key, "(true|false)", "true or false", json_value=True)
    if annotation is int:
        return SingleField(key, _INT_REGEX, "an integer", json_value=True)
    if annotation is float:
        return SingleField(key, _FLOAT_REGEX, "a number", json_value=True)
    return None


# ---- the spec ------------------------------------------------------------------------------------
def _description(key: str, extra: Mapping[str, Any]) -> str | None:
    """What a field is, when the user said so: its ``desc``, unless it is DSPy's ``${name}``.

    A desc written for DSPy's template (``${produce the answer}. We ...``, after the prefix
    ``Reasoning: Let's think step by step in order to``) reads as a sentence once the
    placeholder marks are dropped and its custom prefix is put in front.
    """
    desc = extra.get("desc")
    if not isinstance(desc, str) or desc.strip() in ("", f"${{{key}}}"):
        return None
    text = desc.strip()
    if "${" not in text:
        return text
    text = _PLACEHOLDER.sub(r"\1", text)
    prefix = extra.get("prefix")
    if isinstance(prefix, str) and prefix.strip() != infer_prefix(key) + ":":
        text = f"{prefix.strip()} {text}"
    return text


class OutputSpec:
    """The typed outputs of one signature.

    Attributes:
        keys: the output field names, in order.
        annotations: each field's (resolved) type.
        schema: the JSON schema of the output object (refs inlined, objects closed).
        sketch: the schema as a short JSON-like line for prompts.
        descriptions: ``(key, desc)`` for output fields with a user-written description.
        single: the regex form when there is exactly one output field of a closed scalar type.

    Example:
        >>> from tgispy import Signature
        >>> spec = output_spec(Signature("question -> answer: int"))
        >>> spec.sketch, spec.validate({"answer": "4"})
        ('{"answer": integer}', {'answer': 4})
    """

    __slots__ = (
        "_adapter",
        "_partial",
        "annotations",
        "descriptions",
        "keys",
        "schema",
        "single",
        "sketch",
    )

    def __init__(self, signature: Any) -> None:
        import pydantic  # lazy: only typed signatures need it

        # pydantic needs typing_extensions' TypedDict before Python 3.12
        from typing_extensions import TypedDict

        annotations = output_annotations(signature)
        self.keys: tuple[str, ...] = tuple(annotations)
        self.annotations: dict[str, Any] = annotations
        descriptions: list[tuple[str, str]] = []
        members: dict[str, Any] = {}
        for key, annotation in annotations.items():
            desc = _description(key, signature._output_fields[key].json_schema_extra)
            if desc is not None:
                descriptions.append((key, desc))
                members[key] = Annotated[annotation, pydantic.Field(description=desc)]
            else:
                members[key] = annotation
        self.descriptions: tuple[tuple[str, str], ...] = tuple(descriptions)
        self._partial: Any = None
        try:
            make_typed_dict: Any = TypedDict  # a dynamic class: mypy wants a literal name
            outputs = make_typed_dict(f"{signature.__name__}Outputs", members)
            self._adapter: Any = pydantic.TypeAdapter(outputs)
            raw_schema = self._adapter.json_schema()
        except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as exc:
            raise ConfigError(
                f"the output types of {signature.__name__} cannot be used as typed outputs: "
                f"{exc}. Use str, int, float, bool, list[...], dict[...], Literal[...], an Enum, "
                "a pydantic model or Optional[...] of these"
            ) from exc
        self.schema: dict[str, Any] = _tidy(_inline_refs(raw_schema))
        self.sketch: str = schema_sketch(self.schema)
        self.single: SingleField | None = None
        if len(annotations) == 1:
            ((key, annotation),) = annotations.items()
            self.single = _single_field(key, annotation)

    def validate(self, data: Any) -> dict[str, Any]:
        """Validate decoded JSON into the declared types.

        Raises:
            ParseError: ``data`` is not an object of the declared shape (the message lists the
                problems; ``completion`` is left for the caller to fill in).
        """
        import pydantic

        if not isinstance(data, dict):
            raise ParseError(f"expected a JSON object, got {type(data).__name__}")
        try:
            value: dict[str, Any] = self._adapter.validate_python(data)
        except pydantic.ValidationError as exc:
            (key,) = self.keys if len(self.keys) == 1 else ("",)
            if key and key not in data:
                # A model writing without a grammar often gives a single field's value
                # (e.g. the object of a pydantic model) without the wrapping {"key": ...}.
                try:
                    value = self._adapter.validate_python({key: data})
                except pydantic.ValidationError:
                    raise ParseError(describe_errors(exc.errors())) from exc
                return {key: value[key]}
            raise ParseError(describe_errors(exc.errors())) from exc
        return {key: value[key] for key in self.keys}

    def validate_single(self, text: str) -> dict[str, Any]:
        """Validate the bare value of the single field (regex form).

        Raises:
            ParseError: the text is not a value of the field's type.
        """
        import pydantic

        single = self.single
        assert single is not None
        raw: Any = text
        if single.json_value:
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ParseError(f"{single.key}: {text!r} is not {single.hint}") from exc
        try:
            value = self._adapter.validate_python({single.key: raw})
        except pydantic.ValidationError as exc:
            raise ParseError(describe_errors(exc.errors())) from exc
        return {single.key: value[single.key]}

    def dump(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The output values present in ``values`` as JSON-ready data (for demos).

        Each value is validated into its field's type first, so a demo from a saved state file
        (DSPy 2.4 writes strings: ``"4"``, a model as its JSON text) shows ``4`` / the object; a
        value that does not validate is kept as it is.
        """
        import pydantic

        adapter = self._partial_adapter()
        out: dict[str, Any] = {}
        for key in self.keys:
            value = values.get(key)
            if value is None:
                continue
            out[key] = _jsonable(value)
            for candidate in _readings(value):
                try:
                    typed = adapter.validate_python({key: candidate})[key]
                except pydantic.ValidationError:
                    continue
                out[key] = _jsonable(typed)
                break
        return out

    def _partial_adapter(self) -> Any:
        # The same fields, none required: validates the outputs a demo happens to have.
        if self._partial is None:
            import pydantic
            from typing_extensions import TypedDict

            make_typed_dict: Any = TypedDict
            partial = make_typed_dict("PartialOutputs", dict(self.annotations), total=False)
            self._partial = pydantic.TypeAdapter(partial)
        return self._partial


def _readings(value: Any) -> list[Any]:
    """A value as given, then, for a string holding JSON (a saved model), decoded."""
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            return [value, json.loads(value)]
        except ValueError:
            pass
    return [value]


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def describe_errors(errors: list[Any]) -> str:
    """pydantic's validation errors as one short line: ``answer: Input should be ... (got 'x')``.

    Example:
        >>> describe_errors([{"loc": ("answer",), "msg": "Field required", "input": {}}])
        'answer: Field required'
    """
    parts: list[str] = []
    for err in errors[:_MAX_ERRORS]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
        msg = str(err.get("msg", "invalid"))
        part = f"{loc}: {msg}"
        bad = err.get("input")
        if err.get("type") != "missing" and isinstance(bad, (str, int, float, bool)):
            part += f" (got {bad!r})"
        parts.append(part)
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more")
    return "; ".join(parts)


def extract_json(text: str) -> Any:
    """The first JSON object in ``text`` (text around it, e.g. code fences, is ignored).

    Raises:
        ParseError: no object, or one that is cut off (the message suggests raising
            ``max_tokens``) or malformed.

    Example:
        >>> extract_json('Sure: {"a": 1} done')
        {'a': 1}
    """
    start = text.find("{")
    if start < 0:
        raise ParseError("no JSON object found in the completion")
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise ParseError(
                "the JSON object is cut off before it is complete; raise max_tokens"
            ) from exc
        raise ParseError(f"the completion is not valid JSON: {exc.msg} at char {exc.pos}") from exc
    return value


def output_spec(signature: Any) -> OutputSpec:
    """The :class:`OutputSpec` of a signature class, built once and cached on the class.

    Raises:
        ConfigError: an output type pydantic cannot validate or describe.
    """
    fingerprint = (
        edit_count(),
        tuple(
            (key, field.annotation, *(field.json_schema_extra.get(k) for k in ("desc", "prefix")))
            for key, field in signature._output_fields.items()
        ),
    )
    cached = signature.__dict__.get("_tgispy_output_spec")
    if cached is not None and cached[0] == fingerprint:
        spec: OutputSpec = cached[1]
        return spec
    spec = OutputSpec(signature)
    type.__setattr__(signature, "_tgispy_output_spec", (fingerprint, spec))
    return spec
