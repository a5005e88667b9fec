"""``Predict``: run one signature against the configured LM (DSPy 2.4's ``dspy.Predict``)."""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Mapping
from typing import Any

from tgispy._settings import current as current_settings
from tgispy._sync import run_sync
from tgispy.adapters import Adapter, ChatAdapter, JSONAdapter, TemplateAdapter, TypedAdapter
from tgispy.errors import ConfigError
from tgispy.lm._base import as_lm
from tgispy.predict._generate import agenerate, sampling_config
from tgispy.predict._typed import agenerate_typed
from tgispy.primitives._example import Example
from tgispy.primitives._module import Module, Parameter
from tgispy.primitives._prediction import Prediction
from tgispy.signatures._signature import ensure_signature
from tgispy.signatures._types import has_typed_outputs

__all__ = ["Predict"]

logger = logging.getLogger(__name__)

_DEFAULT_ADAPTER = TemplateAdapter()
_TYPED_ADAPTER = JSONAdapter()
_CHAT_ADAPTER = ChatAdapter()
_ADAPTER_NAMES = ("text", "json", "chat")
_SIGNATURE_STATE_KEYS = frozenset(
    {
        "signature_instructions",
        "signature_prefix",
        "extended_signature_instructions",
        "extended_signature_prefix",
        "fields",
        "lm",
    }
)


class Predict(Module, Parameter):
    """Prompt the LM with a signature, its demos and the inputs; return a :class:`Prediction`.

    Args:
        signature: ``"question -> answer"`` or a ``Signature`` subclass.
        adapter: how the signature is sent and parsed. ``None`` (default): the configured
            adapter, else DSPy 2.4's template for ``str`` outputs and
            :class:`~tgispy.adapters.JSONAdapter` for typed outputs (``answer: int``). ``"json"``:
            JSON output for any signature; ``"chat"``: JSON over the chat API; ``"text"``:
            DSPy 2.4's template even for typed outputs (values stay strings); or an adapter.
        **config: generation parameters for every call (``n=``, ``temperature=``, ...).

    Call arguments are the input fields, plus the optional ``demos=``, ``config=``, ``lm=``,
    ``signature=`` and ``new_signature=`` as in DSPy 2.4.

    Example:
        >>> import tgispy as dspy
        >>> from tgispy.utils.dummies import DummyLM
        >>> dspy.configure(lm=DummyLM(["4"]))
        >>> dspy.Predict("question -> answer")(question="What is 2+2?").answer
        '4'
    """

    extended_signature: Any  # set on the predictor of a ChainOfThought

    def __init__(self, signature: Any, *, adapter: Any = None, **config: Any) -> None:
        super().__init__()
        if signature is None:
            raise ConfigError("Predict needs a signature, e.g. Predict('question -> answer')")
        self.stage = random.randbytes(8).hex()
        self.signature: Any = ensure_signature(signature)
        self.adapter: Any = _check_adapter(adapter)
        self.config: dict[str, Any] = config
        self.reset()

    def reset(self) -> None:
        """Forget the demos, traces and per-predictor LM."""
        self.lm: Any = None
        self.traces: list[Any] = []
        self.train: list[Any] = []
        self.demos: list[Any] = []

    # ---- calling ----------------------------------------------------------------------------
    def forward(self, **kwargs: Any) -> Prediction:
        """Run the predictor (sync face of :meth:`aforward`)."""
        return run_sync(self.aforward(**kwargs))

    async def aforward(self, **kwargs: Any) -> Prediction:
        """Run the predictor: format, call the LM, parse, continue missing fields."""
        current = current_settings()
        new_signature = kwargs.pop("new_signature", None)
        signature = kwargs.pop("signature", None)
        signature = self.signature if signature is None else ensure_signature(signature)
        if new_signature is not None:
            signature = ensure_signature(new_signature)
        demos = kwargs.pop("demos", self.demos) or ()
        config = {**self.config, **(kwargs.pop("config", None) or {})}
        lm = kwargs.pop("lm", None) or self.lm or current.lm
        record = kwargs.pop("_trace", True)
        if lm is None:
            raise ConfigError(
                "No LM is loaded. Configure one first, e.g. "
                "tgispy.configure(lm=tgispy.HFClientTGI(model=..., port=8080, url=...))"
            )
        lm = as_lm(lm)
        config = sampling_config(config, lm.kwargs)

        if not all(k in kwargs for k in signature._input_fields):
            present = [k for k in signature._input_fields if k in kwargs]
            missing = [k for k in signature._input_fields if k not in kwargs]
            logger.warning(
                "Not all input fields were provided to module. Present: %s. Missing: %s.",
                present,
                missing,
            )

        adapter = _choose_adapter(self.adapter or current.adapter, signature)
        generate = agenerate_typed if _is_typed(adapter) else agenerate
        completions = await generate(
            lm,
            adapter,
            signature,
            demos=[_demo_store(d) for d in demos],
            inputs=kwargs,
            config=config,
        )
        pred = Prediction.from_completions(completions, signature=signature)
        trace = current.trace
        if record and trace is not None:
            trace.append((self, {**kwargs}, pred))
        return pred

    def update_config(self, **kwargs: Any) -> None:
        self.config = {**self.config, **kwargs}

    def get_config(self) -> dict[str, Any]:
        return self.config

    # ---- state ------------------------------------------------------------------------------
    def dump_state(self, save_verbose: bool = False) -> dict[str, Any]:
        """Demos plus instructions and last-field prefixes, JSON-ready, in DSPy 2.4's layout.

        The LM is not saved (``"lm": None``).
        """
        state: dict[str, Any] = {
            "lm": None,
            "traces": list(self.traces),
            "train": list(self.train),
            "demos": [_demo_state(demo) for demo in self.demos],
        }
        fields = self.signature.fields
        if save_verbose:
            state["fields"] = [
                {
                    "name": key,
                    "field_type": field.json_schema_extra["__dspy_field_type"],
                    "description": field.json_schema_extra["desc"],
                    "prefix": field.json_schema_extra["prefix"],
                }
                for key, field in fields.items()
            ]
        *_, last_key = fields
        state["signature_instructions"] = self.signature.instructions
        state["signature_prefix"] = fields[last_key].json_schema_extra["prefix"]
        extended = getattr(self, "extended_signature", None)
        if extended is not None:
            state["extended_signature_instructions"] = extended.instructions
            state["extended_signature_prefix"] = extended.fields[last_key].json_schema_extra[
                "prefix"
            ]
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`dump_state`'s output (also the files DSPy 2.4 wrote)."""
        if not isinstance(state, dict):
            raise ConfigError(f"predictor state must be a dict, got {type(state).__name__}")
        for name, value in state.items():
            if name in _SIGNATURE_STATE_KEYS:
                continue
            if name == "demos":
                self.demos = [Example(d) if isinstance(d, dict) else d for d in value or []]
            elif name in ("traces", "train"):
                setattr(self, name, list(value or []))
            else:
                logger.warning("ignoring unknown key %r in a saved predictor state", name)

        if "signature_instructions" in state:
            self.signature = self.signature.with_instructions(state["signature_instructions"])
        if "signature_prefix" in state:
            *_, last_key = self.signature.fields
            self.signature = self.signature.with_updated_fields(
                last_key, prefix=state["signature_prefix"]
            )
        if "extended_signature_instructions" in state or "extended_signature_prefix" in state:
            extended = getattr(self, "extended_signature", None)
            if extended is None:
                raise ConfigError(
                    "this state was saved from a ChainOfThought (it has extended_signature_* "
                    "keys); load it into a ChainOfThought, not a Predict"
                )
            if "extended_signature_instructions" in state:
                extended = extended.with_instructions(state["extended_signature_instructions"])
            if "extended_signature_prefix" in state:
                *_, last_key = extended.fields
                extended = extended.with_updated_fields(
                    last_key, prefix=state["extended_signature_prefix"]
                )
            self.extended_signature = extended

    def __deepcopy__(self, memo: dict[int, Any]) -> Predict:
        # Everything is copied except the LM, which is shared (it holds connections and caches).
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = value if key == "lm" else copy.deepcopy(value, memo)
        return new

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.signature})"


def _check_adapter(adapter: Any) -> Any:
    if adapter is None or adapter in _ADAPTER_NAMES:
        return adapter
    if isinstance(adapter, Adapter):
        return adapter
    raise ConfigError(
        f"adapter must be one of {_ADAPTER_NAMES}, an adapter object (see tgispy.adapters) or "
        f"None, got {adapter!r}"
    )


_TYPED_BY_CLASS: dict[type, bool] = {}


def _is_typed(adapter: Any) -> bool:
    """Whether ``adapter`` is a :class:`~tgispy.adapters.TypedAdapter` (cached per class: a
    runtime protocol check costs ~20 us, a seventh of a whole DummyLM ChainOfThought call)."""
    cls = type(adapter)
    typed = _TYPED_BY_CLASS.get(cls)
    if typed is None:
        typed = _TYPED_BY_CLASS[cls] = isinstance(adapter, TypedAdapter)
    return typed


def _choose_adapter(adapter: Any, signature: Any) -> Any:
    """The adapter for one call: named ones resolved, typed outputs defaulting to JSON."""
    if adapter is None:
        # The DSPy 2.4 template stays the default for str outputs: identical prompts.
        return _TYPED_ADAPTER if has_typed_outputs(signature) else _DEFAULT_ADAPTER
    if adapter == "text":
        return _DEFAULT_ADAPTER
    if adapter == "json":
        return _TYPED_ADAPTER
    if adapter == "chat":
        return _CHAT_ADAPTER
    return adapter


def _demo_store(demo: Any) -> Mapping[str, Any]:
    if isinstance(demo, Example):
        return demo._store
    if isinstance(demo, Mapping):
        return demo
    raise ConfigError(f"demos must be dspy.Example objects or dicts, got {type(demo).__name__}")


def _demo_state(demo: Any) -> dict[str, Any]:
    record = demo.toDict() if isinstance(demo, Example) else dict(demo)
    for key, value in record.items():
        if hasattr(value, "model_dump_json"):  # pydantic models, as DSPy 2.4 saved them
            record[key] = value.model_dump_json()
        elif isinstance(value, Example):
            record[key] = value.toDict()
    return record
