"""``Signature``: the input and output fields of a task, plus its instructions.

A signature is a class (as in DSPy 2.4), written either as a string -- ``Signature("question ->
answer")`` -- or as a subclass with a docstring and ``InputField`` / ``OutputField`` attributes.
Signature classes are never instantiated; their metaclass gives them DSPy's class-level API
(``fields``, ``input_fields``, ``with_instructions``, ``prepend`` ...).
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, get_origin

from tgispy.errors import ConfigError
from tgispy.signatures._field import FieldInfo, InputField, OutputField
from tgispy.signatures._types import resolve_annotation

__all__ = [
    "Signature",
    "SignatureMeta",
    "ensure_signature",
    "infer_prefix",
    "make_signature",
]

FieldSpec = FieldInfo | tuple[Any, FieldInfo]


def _default_instructions(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> str:
    inputs_ = ", ".join(f"`{name}`" for name in inputs)
    outputs_ = ", ".join(f"`{name}`" for name in outputs)
    return f"Given the fields {inputs_}, produce the fields {outputs_}."


class SignatureMeta(type):
    """Metaclass of signatures: collects the fields and provides DSPy's class-level API."""

    _fields: dict[str, FieldInfo]
    _input_fields: dict[str, FieldInfo]
    _output_fields: dict[str, FieldInfo]

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> SignatureMeta:
        annotations: dict[str, Any] = dict(namespace.get("__annotations__", {}))
        # DSPy 2.4 (through pydantic) ordered fields by their annotation: annotated fields first,
        # then unannotated ones (given type str) in definition order. Prompts depend on this.
        order = [
            n for n in annotations if not n.startswith("_") and not _is_classvar(annotations[n])
        ]
        for key, value in namespace.items():
            if isinstance(value, FieldInfo) and key not in annotations:
                if key.startswith("_"):
                    raise ConfigError(
                        f"Field {key!r} in {name!r}: field names must not start with '_'"
                    )
                order.append(key)
                annotations[key] = str

        # `from __future__ import annotations` turns annotations into strings; evaluate them as
        # pydantic did for DSPy 2.4: in the defining module, plus the locals of the frame running
        # the class statement (types defined inside a function).
        module = namespace.get("__module__")
        has_strings = any(isinstance(annotations[key], str) for key in order)
        localns = _class_statement_locals() if has_strings else {}
        fields: dict[str, FieldInfo] = {}
        for base in reversed(bases):
            if isinstance(base, SignatureMeta):
                fields.update(base._fields)
        for key in order:
            value = namespace.pop(key, None)
            if not isinstance(value, FieldInfo) or value.field_type not in ("input", "output"):
                raise ConfigError(
                    f"Field {key!r} in {name!r} must be declared with InputField or OutputField, "
                    f"e.g. `{key}: str = dspy.OutputField()`"
                )
            field = value.copy()
            field.annotation = resolve_annotation(annotations[key], module, localns)
            extra = field.json_schema_extra
            if "prefix" not in extra:
                extra["prefix"] = infer_prefix(key) + ":"
            if "desc" not in extra:
                extra["desc"] = f"${{{key}}}"
            fields[key] = field
        namespace["__annotations__"] = {k: v for k, v in annotations.items() if k not in fields}

        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        cls._fields = fields
        cls._input_fields = {k: f for k, f in fields.items() if f.field_type == "input"}
        cls._output_fields = {k: f for k, f in fields.items() if f.field_type == "output"}

        if cls.__doc__ is None:
            # A subclass without a docstring keeps its parent's instructions, as in DSPy 2.4.
            for base in bases:
                doc = getattr(base, "__doc__", "") if isinstance(base, SignatureMeta) else ""
                if doc != "":
                    cls.__doc__ = doc
        if cls.__doc__ is None:
            cls.__doc__ = _default_instructions(cls._input_fields, cls._output_fields)
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Signature:
            return make_signature(*args, **kwargs)
        raise ConfigError(
            f"{cls.__name__} is a signature (a class describing a task) and is not instantiated; "
            f"use it as dspy.Predict({cls.__name__})"
        )

    # ---- DSPy's class-level API ---------------------------------------------------------------
    @property
    def signature(cls) -> str:
        """``"question, context -> answer"``."""
        return f"{', '.join(cls._input_fields)} -> {', '.join(cls._output_fields)}"

    @property
    def instructions(cls) -> str:
        """The docstring, dedented and stripped (``inspect.cleandoc``) as in DSPy 2.4."""
        return inspect.cleandoc(cls.__doc__ or "")

    @property
    def fields(cls) -> dict[str, FieldInfo]:
        """Input fields, then output fields."""
        return {**cls._input_fields, **cls._output_fields}

    @property
    def input_fields(cls) -> dict[str, FieldInfo]:
        return dict(cls._input_fields)

    @property
    def output_fields(cls) -> dict[str, FieldInfo]:
        return dict(cls._output_fields)

    @property
    def model_fields(cls) -> dict[str, FieldInfo]:
        """Fields in declaration order (pydantic's name, used by some DSPy code)."""
        return dict(cls._fields)

    def with_instructions(cls, instructions: str) -> SignatureMeta:
        """A new signature with the same fields and other instructions."""
        return make_signature(cls.fields, instructions)

    def with_updated_fields(cls, name: str, type_: Any = None, **kwargs: Any) -> SignatureMeta:
        """A new signature whose field ``name`` has ``json_schema_extra`` updated by ``kwargs``.

        Example:
            >>> Signature("question -> answer").with_updated_fields(
            ...     "answer", prefix="Final Answer:").fields["answer"].json_schema_extra["prefix"]
            'Final Answer:'
        """
        fields = {key: field.copy() for key, field in cls.fields.items()}
        if name not in fields:
            raise ConfigError(f"{cls.__name__} has no field {name!r}; fields: {list(fields)}")
        fields[name].json_schema_extra.update(kwargs)
        if type_ is not None:
            fields[name].annotation = type_
        return make_signature(fields, cls.instructions)

    def prepend(cls, name: str, field: FieldInfo, type_: Any = None) -> SignatureMeta:
        """A new signature with ``field`` first among the inputs or outputs (by its type)."""
        return cls.insert(0, name, field, type_)

    def append(cls, name: str, field: FieldInfo, type_: Any = None) -> SignatureMeta:
        """A new signature with ``field`` last among the inputs or outputs (by its type)."""
        return cls.insert(-1, name, field, type_)

    def insert(cls, index: int, name: str, field: FieldInfo, type_: Any = None) -> SignatureMeta:
        """A new signature with ``field`` at ``index`` among the inputs or outputs.

        Negative indices count from the end (``-1`` appends), as in DSPy 2.4.
        """
        if not isinstance(field, FieldInfo) or field.field_type not in ("input", "output"):
            raise ConfigError(f"insert() needs an InputField() or OutputField(), got {field!r}")
        if type_ is None:
            type_ = field.annotation if field.annotation is not None else str
        inputs = list(cls._input_fields.items())
        outputs = list(cls._output_fields.items())
        target = inputs if field.field_type == "input" else outputs
        if index < 0:
            index += len(target) + 1
        if index < 0 or index > len(target):
            raise ConfigError(f"Invalid index: {index}")
        new_field = field.copy()
        new_field.annotation = type_
        target.insert(index, (name, new_field))
        return make_signature(dict(inputs + outputs), cls.instructions)

    def equals(cls, other: Any) -> bool:
        """Same instructions and the same field names."""
        if not isinstance(other, SignatureMeta):
            return False
        if cls.instructions != other.instructions:
            return False
        return set(cls.fields) == set(other.fields)

    def __repr__(cls) -> str:
        field_repr = "\n    ".join(f"{name} = Field({field})" for name, field in cls.fields.items())
        return (
            f"{cls.__name__}({cls.signature}\n    instructions={cls.instructions!r}\n"
            f"    {field_repr}\n)"
        )


def _class_statement_locals() -> dict[str, Any]:
    # Frames: this function, SignatureMeta.__new__, then the class statement (type.__call__ and
    # __build_class__ are C and have no frame). Only needed when an annotation is a string.
    try:
        frame = sys._getframe(2)
    except ValueError:  # pragma: no cover - shallower stack than a class statement
        return {}
    return dict(frame.f_locals)


def _is_classvar(annotation: Any) -> bool:
    if annotation is ClassVar or get_origin(annotation) is ClassVar:
        return True
    return isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar"))


class Signature(metaclass=SignatureMeta):
    ""  # empty on purpose: subclasses without a docstring get default instructions


def ensure_signature(signature: Any, instructions: str | None = None) -> Any:
    """Turn a string into a signature class; pass signature classes through.

    Example:
        >>> ensure_signature("question -> answer").signature
        'question -> answer'
    """
    if signature is None:
        return None
    if isinstance(signature, str):
        return make_signature(signature, instructions)
    if isinstance(signature, SignatureMeta):
        if instructions is not None:
            raise ConfigError("Don't specify instructions when initializing with a Signature")
        return signature
    raise ConfigError(
        "a signature must be a string such as 'question -> answer' or a dspy.Signature subclass, "
        f"got {signature!r}"
    )


def make_signature(
    signature: str | Mapping[str, FieldSpec],
    instructions: str | None = None,
    signature_name: str = "StringSignature",
) -> SignatureMeta:
    """Create a signature class from a string or a dict of fields.

    Args:
        signature: ``"input1, input2 -> output1, output2"`` (types allowed: ``"k: int -> x"``) or
            ``{name: FieldInfo | (type, FieldInfo)}``.
        instructions: the task instructions (default: ``Given the fields ..., produce ...``).
        signature_name: the class name.

    Example:
        >>> make_signature("context, question -> answer", "Answer briefly.").instructions
        'Answer briefly.'
    """
    if isinstance(signature, str):
        fields: Mapping[str, FieldSpec] = _parse_signature(signature)
    elif isinstance(signature, Mapping):
        fields = signature
    else:
        raise ConfigError(
            "make_signature() needs a string such as 'question -> answer' or a dict of fields, "
            f"got {type(signature).__name__}"
        )
    if instructions is not None and not isinstance(instructions, str):
        raise ConfigError(f"instructions must be a string, got {type(instructions).__name__}")

    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for name, spec in fields.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"Field names must be identifiers (strings), got {name!r}")
        if isinstance(spec, FieldInfo):
            type_, field = spec.annotation, spec
        elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], FieldInfo):
            type_, field = spec
        else:
            raise ConfigError(
                f"Field {name!r}: values must be InputField()/OutputField() or (type, field) "
                f"tuples, got {spec!r}"
            )
        annotations[name] = str if type_ is None else type_
        namespace[name] = field
    if not instructions:
        # As DSPy 2.4 (through pydantic's create_model): no or empty instructions -> the default.
        inputs = [n for n, f in namespace.items() if f.field_type == "input"]
        outputs = [n for n, f in namespace.items() if f.field_type == "output"]
        instructions = _default_instructions(dict.fromkeys(inputs), dict.fromkeys(outputs))
    namespace["__annotations__"] = annotations
    namespace["__doc__"] = instructions
    namespace["__module__"] = __name__
    namespace["__qualname__"] = signature_name
    return SignatureMeta(signature_name, (Signature,), namespace)


def _parse_signature(signature: str) -> dict[str, FieldSpec]:
    if not signature.strip():
        raise ConfigError(
            "empty signature; write the fields as 'inputs -> outputs', e.g. 'question -> answer'"
        )
    if signature.count("->") != 1:
        raise ConfigError(
            f"Invalid signature format: {signature!r}, must contain exactly one '->' "
            "(e.g. 'context, question -> answer')"
        )
    inputs_str, outputs_str = signature.split("->")
    fields: dict[str, FieldSpec] = {}
    for name, type_ in _parse_arg_string(inputs_str, signature):
        fields[name] = (type_, InputField())
    outputs = _parse_arg_string(outputs_str, signature)
    if not outputs:
        raise ConfigError(
            f"signature {signature!r} has no output fields; name at least one after '->', "
            "e.g. 'question -> answer'"
        )
    for name, type_ in outputs:
        if name in fields:
            raise ConfigError(
                f"field {name!r} appears on both sides of signature {signature!r}; rename one"
            )
        fields[name] = (type_, OutputField())
    return fields


def _parse_arg_string(string: str, signature: str) -> list[tuple[str, Any]]:
    try:
        tree = ast.parse("def f(" + string + "): pass")
    except SyntaxError as exc:
        raise ConfigError(
            f"could not parse the fields {string.strip()!r} of signature {signature!r}: write "
            "comma-separated names, optionally typed (e.g. 'question, k: int -> answer')"
        ) from exc
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    args = func.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or args.posonlyargs:
        raise ConfigError(
            f"could not parse the fields {string.strip()!r} of signature {signature!r}: only "
            "names and type annotations are allowed"
        )
    return [
        (arg.arg, str if arg.annotation is None else _parse_type_node(arg.annotation, signature))
        for arg in args.args
    ]


_BUILTIN_TYPES: dict[str, Any] = {
    t.__name__: t for t in (int, str, float, bool, list, tuple, dict, set, bytes)
}


def _parse_type_node(node: ast.AST, signature: str) -> Any:
    if isinstance(node, ast.Name):
        if node.id in _BUILTIN_TYPES:
            return _BUILTIN_TYPES[node.id]
        if hasattr(typing, node.id):
            return getattr(typing, node.id)
        raise ConfigError(f"Unknown type {node.id!r} in signature {signature!r}")
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id == "typing" and hasattr(typing, node.attr):
            return getattr(typing, node.attr)
        raise ConfigError(f"Unknown type {ast.unparse(node)!r} in signature {signature!r}")
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.Subscript):
        base = _parse_type_node(node.value, signature)
        if base is typing.Literal:
            return _literal(node, signature)
        arg = _parse_type_node(node.slice, signature)
        try:
            return base[arg]
        except TypeError as exc:
            raise ConfigError(
                f"Invalid type {ast.unparse(node)!r} in signature {signature!r}"
            ) from exc
    if isinstance(node, ast.Tuple):
        return tuple(_parse_type_node(elt, signature) for elt in node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        # `int | None` -> typing.Optional[int]; typing.Union also accepts None for NoneType.
        left = _parse_type_node(node.left, signature)
        right = _parse_type_node(node.right, signature)
        return typing.Union[left, right]
    raise ConfigError(f"Unsupported type {ast.unparse(node)!r} in signature {signature!r}")


def _literal(node: ast.Subscript, signature: str) -> Any:
    """``Literal['a', 'b']`` in a string signature: its values must be constants."""
    elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    values: list[Any] = []
    for elt in elts:
        if not isinstance(elt, ast.Constant) or not isinstance(
            elt.value, (str, int, bool, type(None))
        ):
            raise ConfigError(
                f"Literal values must be strings, integers, booleans or None; got "
                f"{ast.unparse(elt)!r} in signature {signature!r}"
            )
        values.append(elt.value)
    return typing.Literal[tuple(values)]


def infer_prefix(attribute_name: str) -> str:
    """The prompt label DSPy derives from a field name (without the colon).

    camelCase and snake_case become Title Case, digits are split off, acronyms stay upper case.

    Example:
        >>> infer_prefix("question"), infer_prefix("input1"), infer_prefix("someHTTPValue")
        ('Question', 'Input 1', 'Some HTTP Value')
    """
    # Split camelCase, keeping runs of capitals (acronyms) together.
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", attribute_name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    # Separate letters from digits on both sides.
    name = re.sub(r"([a-zA-Z])(\d)", r"\1_\2", name)
    name = re.sub(r"(\d)([a-zA-Z])", r"\1_\2", name)
    words = name.split("_")
    return " ".join(word if word.isupper() else word.capitalize() for word in words)
