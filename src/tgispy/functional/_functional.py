"""Typed predictors (DSPy 2.4's ``dspy.functional``): ``TypedPredictor``, ``TypedChainOfThought``,
the ``@predictor`` / ``@cot`` decorators and ``FunctionalModule``.

A typed predictor sends DSPy 2.4.17's prompt: each typed output field's description says what to
answer (``(Respond with a single int value)``, ``Respond with a single JSON object. JSON Schema:
...``), the completion is parsed field by field, and a completion that does not parse is retried
with the error shown to the model as a ``Past Error in <Field>`` input (up to ``max_retries``
tries; for JSON fields the model is first asked for an example object). The prompts, including
every retry, are byte-identical to DSPy 2.4.17's.

On an LM that can constrain decoding (TGI's grammars, ``supports_grammar()``), a predictor with
one output field of a non-``str`` type sends that field's grammar with the same prompt: a JSON
schema for JSON values, a regex for ``int`` / ``float`` / ``bool``. Parse errors then cannot
happen for well-formed values, and the retry loop is what remains for everything else.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pydantic

from tgispy._settings import current as current_settings
from tgispy.adapters._template import passages2text
from tgispy.errors import ParseError
from tgispy.functional._json import loads_like_ujson
from tgispy.predict._predict import Predict
from tgispy.predict._typed import lm_supports_grammar
from tgispy.primitives._module import Module
from tgispy.primitives._prediction import Prediction
from tgispy.signatures._field import FieldInfo, InputField, OutputField
from tgispy.signatures._signature import Signature, ensure_signature, make_signature

__all__ = [
    "FunctionalModule",
    "TypedChainOfThought",
    "TypedPredictor",
    "cot",
    "field_grammar",
    "predictor",
]

_EXAMPLE_PREFIX = "You MUST use this format: "
_SCHEMA_MARK = "JSON Schema: "


def _as_text(x: Any) -> Any:
    return x if isinstance(x, str) else str(x)


def _parse_bool(x: str) -> bool:
    x = x.strip().lower()
    if x not in ("true", "false"):
        raise ValueError("Respond with true or false")
    return x == "true"


def _unwrap_json(output: str, from_json: Callable[[str], Any]) -> str:
    """DSPy 2.4's ``_unwrap_json``: accept fenced ```json blocks, normalize the JSON text."""
    try:
        parsed = from_json(output)
    except (ValueError, pydantic.ValidationError, AttributeError):
        output = output.strip()
        if output.startswith("```"):
            if not output.startswith("```json"):
                raise ValueError("json output should start with ```json") from None
            if not output.endswith("```"):
                raise ValueError("Don't write anything after the final json ```") from None
            output = output[7:-3].strip()
        return json.dumps(loads_like_ujson(output))
    if isinstance(parsed, pydantic.BaseModel):
        return parsed.model_dump_json()
    return output


def _is_model(type_: Any) -> bool:
    return (
        inspect.isclass(type_)
        and typing.get_origin(type_) not in (list, tuple)
        and issubclass(type_, pydantic.BaseModel)
    )


def _json_codec(type_: Any, wrap_json: bool) -> tuple[Callable[[Any], str], Any, str]:
    """``(to_json, from_json, schema)`` of a JSON-valued output type, as DSPy 2.4 built them."""
    to_json: Callable[[Any], str]
    from_json: Callable[[str], Any]
    if _is_model(type_):
        model: Any = type_

        def to_json(x: Any) -> str:
            return str(x.model_dump_json())

        def from_json(x: str) -> Any:
            return model.model_validate_json(x)

        schema = json.dumps(model.model_json_schema())
    else:
        adapter: Any = pydantic.TypeAdapter(type_)

        def to_json(x: Any) -> str:
            return bytes(adapter.dump_json(x)).decode()

        def from_json(x: str) -> Any:
            return adapter.validate_json(x)

        schema = json.dumps(adapter.json_schema())
    if wrap_json:
        inner = to_json

        def to_json(x: Any) -> str:
            return "```json\n" + inner(x) + "\n```\n"

        schema = "```json\n" + schema + "\n```"
    return to_json, from_json, schema


def _json_output_field(type_: Any, wrap_json: bool) -> dict[str, Any]:
    to_json, from_json, schema = _json_codec(type_, wrap_json)
    return {
        "format": lambda x: x if isinstance(x, str) else to_json(x),
        "parser": lambda x: from_json(_unwrap_json(x, from_json)),
        "schema": schema,
    }


def _input_format(type_: Any, wrap_json: bool) -> Callable[[Any], Any]:
    is_json = False
    format_: Callable[[Any], Any] = _as_text
    if type_ in (list[str], tuple[str], typing.List[str], typing.Tuple[str]):  # noqa: UP006
        format_ = passages2text
    elif typing.get_origin(type_) in (list, tuple):
        (inner_type,) = typing.get_args(type_)
        if inspect.isclass(inner_type) and issubclass(inner_type, pydantic.BaseModel):

            def format_(x: Any) -> Any:
                if isinstance(x, str):
                    return x
                return "[" + ",".join(i.model_dump_json() for i in x) + "]"

        else:

            def format_(x: Any) -> Any:
                return x if isinstance(x, str) else json.dumps(x)

        is_json = True
    elif inspect.isclass(type_) and issubclass(type_, pydantic.BaseModel):

        def format_(x: Any) -> Any:
            return x if isinstance(x, str) else x.model_dump_json()

        is_json = True
    if wrap_json and is_json:
        inner = format_

        def format_(x: Any) -> Any:
            return x if isinstance(x, str) else "```json\n" + inner(x) + "\n```\n"

    return format_


def prepare_signature(signature: Any, wrap_json: bool = False) -> Any:
    """``signature`` with formats, parsers and type hints added per field (DSPy 2.4's rules).

    Example:
        >>> sig = prepare_signature(Signature("question -> answer: int"))
        >>> sig.output_fields["answer"].json_schema_extra["desc"]
        '${answer} (Respond with a single int value)'
    """
    prepared = signature
    for name, field in signature.fields.items():
        type_ = field.annotation
        desc = field.json_schema_extra.get("desc", "")
        if field.json_schema_extra["__dspy_field_type"] != "output":
            prepared = prepared.with_updated_fields(name, format=_input_format(type_, wrap_json))
        elif type_ is bool:
            prepared = prepared.with_updated_fields(
                name,
                desc=desc + " (Respond with true or false)",
                format=_as_text,
                parser=_parse_bool,
            )
        elif type_ in (str, int, float):
            hint = f" (Respond with a single {type_.__name__} value)" if type_ is not str else ""
            prepared = prepared.with_updated_fields(
                name, desc=desc + hint, format=_as_text, parser=type_
            )
        else:
            extra = _json_output_field(type_, wrap_json)
            prepared = prepared.with_updated_fields(
                name,
                type_=type_,
                desc=desc + ". Respond with a single JSON object. JSON Schema: " + extra["schema"],
                **extra,
            )
    return prepared


def field_grammar(signature: Any) -> dict[str, Any] | None:
    """TGI's ``grammar`` for a prepared signature with one typed output field, else ``None``.

    Example:
        >>> field_grammar(prepare_signature(Signature("question -> answer: int")))
        {'type': 'regex', 'value': ' ?-?[0-9]+\\\\n?'}
    """
    outputs = signature.output_fields
    if len(outputs) != 1:
        return None
    (field,) = outputs.values()
    type_ = field.annotation
    if type_ is bool:
        return {"type": "regex", "value": " ?(true|false)\\n?"}
    if type_ is int:
        return {"type": "regex", "value": " ?-?[0-9]+\\n?"}
    if type_ is float:
        return {"type": "regex", "value": " ?-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?\\n?"}
    schema = field.json_schema_extra.get("schema")
    if schema is None:
        return None
    try:
        from tgispy.adapters._schema import _inline_refs

        value = _inline_refs(json.loads(schema))
    except ValueError:
        return None  # a ```json-wrapped schema (wrap_json=True) is not a grammar
    return {"type": "json", "value": value}


class TypedPredictor(Module):
    """Like :class:`~tgispy.Predict`, but parses and validates the typed output fields.

    Args:
        signature: the signature; annotations give the output types (``"question -> answer:
            int"``, pydantic models, ``list[int]`` ...).
        instructions: instructions, for a string signature.
        max_retries: how many tries before giving up (each retry shows the parse errors).
        wrap_json: wrap JSON inputs and schemas in ```json fences.
        explain_errors: ask the LM to explain each parse error (one more call per error).

    Raises (on call):
        ParseError: still no valid output after ``max_retries`` tries (a ``ValueError``, as in
            DSPy 2.4); ``errors`` holds the last error per field.

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.utils.dummies import DummyLM
        >>> dspy.configure(lm=DummyLM(["forty two", "42"]))
        >>> dspy.TypedPredictor("question -> answer: int")(question="6 times 7?").answer
        42
    """

    def __init__(
        self,
        signature: Any,
        instructions: str | None = None,
        *,
        max_retries: int = 3,
        wrap_json: bool = False,
        explain_errors: bool = False,
    ) -> None:
        super().__init__()
        self.signature: Any = ensure_signature(signature, instructions)
        self.predictor = Predict(signature, adapter="text")
        self.max_retries = max_retries
        self.wrap_json = wrap_json
        self.explain_errors = explain_errors

    def copy(self) -> TypedPredictor:
        """A fresh predictor with the same signature and options (no demos)."""
        return TypedPredictor(
            self.signature,
            max_retries=self.max_retries,
            wrap_json=self.wrap_json,
            explain_errors=self.explain_errors,
        )

    def __repr__(self) -> str:
        return f"TypedPredictor({self.signature})"

    def _prepare_signature(self) -> Any:
        return prepare_signature(self.signature, self.wrap_json)

    # ---- LM helpers (DSPy 2.4 asks the LM for examples and explanations) -------------------
    async def _make_example(self, field: FieldInfo) -> str:
        schema = field.json_schema_extra["schema"]
        parser = field.json_schema_extra["parser"]
        if self.wrap_json:
            schema = "```json\n" + schema + "\n```\n"
        maker = Predict(
            make_signature(
                "json_schema -> json_object",
                "Make a very succinct json object that validates with the following schema",
            ),
            adapter="text",
        )
        json_object = (await maker.acall(json_schema=schema)).json_object
        try:
            parser(json_object)
        except (pydantic.ValidationError, ValueError):
            return ""
        return str(json_object)

    async def _format_error(
        self, error: Exception, task_description: Any, model_output: str, lm_explain: bool
    ) -> str:
        if isinstance(error, pydantic.ValidationError):
            error_text = "; ".join(
                f"{e['msg']}: {', '.join(map(str, e['loc']))} (error type: {e['type']})"
                for e in error.errors()
            )
        else:
            error_text = repr(error)
        if not (self.explain_errors and lm_explain):
            return error_text
        if isinstance(task_description, FieldInfo):
            args = task_description.json_schema_extra
            task_description = args["prefix"] + " " + args["desc"]
        advice = (
            await Predict(_ExplainError, adapter="text").acall(
                task_description=task_description,
                language_model_output=model_output,
                error=error_text,
            )
        ).advice
        return error_text + "\n" + str(advice)

    # ---- the loop ---------------------------------------------------------------------------
    async def aforward(self, **kwargs: Any) -> Prediction:
        """Predict, parse every output field, retry with the errors shown; see the class."""
        modified_kwargs = dict(kwargs)
        # Prepared on every call: an optimizer may have changed the base signature.
        signature = self._prepare_signature()
        errors: dict[str, str] = {}
        base_config = dict(modified_kwargs.pop("config", None) or {})
        for try_i in range(self.max_retries):
            config = dict(base_config)
            lm = kwargs.get("lm") or self.predictor.lm or current_settings().lm
            grammar = await self._grammar(signature, lm)
            if grammar is not None and "grammar" not in config:
                config["grammar"] = grammar
                lm_kwargs = getattr(lm, "kwargs", None) or {}
                if grammar["type"] == "json" and lm_kwargs.get("stop") and "stop" not in config:
                    # DSPy's default "\n" stop would cut the JSON the grammar lets the model
                    # format over several lines; the grammar ends it instead.
                    config["stop"] = None
            call = {**modified_kwargs, "new_signature": signature}
            if config:
                call["config"] = config
            result = await self.predictor.acall(**call)
            errors = {}
            parsed_results: list[dict[str, Any]] = []
            completions = result.completions
            for index in range(len(completions)):
                completion = completions[index]
                parsed: dict[str, Any] = {}
                for name, field in signature.output_fields.items():
                    value = completion[name]
                    try:
                        parser = field.json_schema_extra.get("parser", lambda x: x)
                        parsed[name] = parser(value)
                    except (pydantic.ValidationError, ValueError) as exc:
                        errors[name] = await self._format_error(
                            exc,
                            signature.fields[name],
                            value,
                            lm_explain=try_i + 1 < self.max_retries,
                        )
                        signature = await self._with_example(signature, name, field, try_i)
                if errors:
                    break
                parsed_results.append(parsed)
            if not errors:
                return Prediction.from_completions(
                    {key: [r[key] for r in parsed_results] for key in signature.output_fields}
                )
            for name, error in errors.items():
                modified_kwargs[f"error_{name}_{try_i}"] = error
                error_prefix = (
                    "General:"
                    if name == "general"
                    else signature.output_fields[name].json_schema_extra["prefix"]
                )
                number = "" if try_i == 0 else f" ({try_i + 1})"
                signature = signature.append(
                    f"error_{name}_{try_i}",
                    InputField(
                        prefix=f"Past Error{number} in {error_prefix}",
                        desc="An error to avoid in the future",
                    ),
                )
        failure = ParseError(
            "Too many retries trying to get the correct output format. "
            "Try simplifying the requirements."
        )
        failure.errors = errors  # type: ignore[attr-defined]
        raise failure

    async def _with_example(self, signature: Any, name: str, field: FieldInfo, try_i: int) -> Any:
        """For a JSON field: add an LM-made example object to its description (once)."""
        current_desc = field.json_schema_extra.get("desc", "")
        i = current_desc.find(_SCHEMA_MARK)
        if i == -1:
            return signature
        suffix, current_desc = current_desc[i:], current_desc[:i]
        if try_i + 1 >= self.max_retries or _EXAMPLE_PREFIX in current_desc:
            return signature
        example = await self._make_example(field)
        if not example:
            return signature
        return signature.with_updated_fields(
            name, desc=current_desc + "\n" + _EXAMPLE_PREFIX + example + "\n" + suffix
        )

    async def _grammar(self, signature: Any, lm: Any) -> dict[str, Any] | None:
        if lm is None or not await lm_supports_grammar(lm):
            return None
        return field_grammar(signature)


class _ExplainError(Signature):
    """I gave my language model a task, but it failed.

    Figure out what went wrong, and write instructions to help it avoid the error next time.
    """

    task_description: str = InputField(desc="What I asked the model to do")
    language_model_output: str = InputField(desc="The output of the model")
    error: str = InputField(desc="The validation error trigged by the models output")
    explanation: str = OutputField(desc="Explain what the model did wrong")
    advice: str = OutputField(
        desc="Instructions for the model to do better next time. A single paragraph."
    )


def TypedChainOfThought(
    signature: Any,
    instructions: str | None = None,
    reasoning: Any = None,
    *,
    max_retries: int = 3,
) -> TypedPredictor:
    """A :class:`TypedPredictor` with a ``reasoning`` output field first.

    Example:
        >>> program = TypedChainOfThought("question -> answer: float")
        >>> list(program.signature.output_fields)
        ['reasoning', 'answer']
    """
    signature = ensure_signature(signature, instructions)
    output_keys = ", ".join(signature.output_fields.keys())
    reasoning = reasoning or OutputField(
        prefix="Reasoning: Let's think step by step in order to",
        desc="${produce the " + output_keys + "}. We ...",
    )
    return TypedPredictor(signature.prepend("reasoning", reasoning), max_retries=max_retries)


class _StripOutput(Module):
    def __init__(self, predictor: TypedPredictor, output_key: str) -> None:
        super().__init__()
        self.predictor = predictor
        self.output_key = output_key

    def copy(self) -> _StripOutput:
        return _StripOutput(self.predictor.copy(), self.output_key)

    async def aforward(self, **kwargs: Any) -> Any:
        prediction = await self.predictor.acall(**kwargs)
        return prediction[self.output_key]


def _strip_annotated(annotation: Any) -> tuple[Any, dict[str, Any]]:
    if typing.get_origin(annotation) is Annotated:
        base, *meta = typing.get_args(annotation)
        desc = next((arg for arg in meta if isinstance(arg, str)), None)
        return base, ({"desc": desc} if desc is not None else {})
    return annotation, {}


def _func_to_signature(func: Callable[..., Any]) -> Any:
    """A signature from a function: parameters are inputs, the function's name the output."""
    sig = inspect.signature(func)
    annotations = typing.get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for param in sig.parameters.values():
        if param.name == "self":
            continue
        annotation, kwargs = _strip_annotated(annotations.get(param.name, str))
        fields[param.name] = (annotation, InputField(**kwargs))
    annotation, kwargs = _strip_annotated(annotations.get("return", str))
    fields[func.__name__] = (annotation, OutputField(**kwargs))
    return make_signature(fields, func.__doc__)


def _decorator(
    make: Callable[..., TypedPredictor], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Any:
    def wrap(func: Callable[..., Any]) -> Module:
        signature = _func_to_signature(func)
        *_, output_key = signature.output_fields.keys()
        return _StripOutput(make(signature, **kwargs), output_key)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return wrap(args[0])
    return wrap


def predictor(*args: Any, **kwargs: Any) -> Any:
    """Decorate a method into a :class:`TypedPredictor` of its signature and docstring.

    Example:
        >>> class Calc(FunctionalModule):
        ...     @predictor
        ...     def double(self, number: int) -> int:
        ...         \"\"\"Double the number.\"\"\"
        >>> Calc().double.predictor.signature.signature
        'number -> double'
    """
    return _decorator(TypedPredictor, args, kwargs)


def cot(*args: Any, **kwargs: Any) -> Any:
    """Decorate a method into a :func:`TypedChainOfThought` (see :func:`predictor`)."""
    return _decorator(TypedChainOfThought, args, kwargs)


class FunctionalModule(Module):
    """Base class of modules whose methods are decorated with :func:`predictor` / :func:`cot`.

    Each instance gets its own copy of the decorated predictors.
    """

    def __init__(self) -> None:
        super().__init__()
        for name in dir(self):
            attr = getattr(self, name)
            if isinstance(attr, Module):
                self.__dict__[name] = attr.copy()  # type: ignore[attr-defined]
