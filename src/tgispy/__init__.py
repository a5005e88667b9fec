"""tgispy: DSPy-compatible LM programs over HuggingFace text-generation-inference fleets.

``import tgispy as dspy`` offers the names DSPy 2.4 programs use::

    import tgispy as dspy

    dspy.configure(lm=dspy.HFClientTGI(model="meta-llama/Llama-2-7b-hf", port=8080,
                                       url="http://localhost"))
    qa = dspy.ChainOfThought("question -> answer")
    print(qa(question="What is the capital of France?").answer)

Heavy parts (the TGI client and its HTTP stack, evaluation, optimizers) load on first use.
"""

# No `from __future__ import annotations` and only private aliases here: every module-level name
# is public API or starts with "_" (dir() lists __all__ only).
import importlib as _importlib
import typing as _typing

from tgispy._inspect import inspect_history
from tgispy._public import publish as _publish
from tgispy._public import publish_object as _publish_object
from tgispy._settings import settings
from tgispy.errors import ConfigError, ParseError, TGIError, TgispyError
from tgispy.lm import LM
from tgispy.lm._scope import OUT_OF_SCOPE as _OUT_OF_SCOPE
from tgispy.predict import ChainOfThought, Predict
from tgispy.primitives import Completions, Example, Module, Prediction, Program
from tgispy.signatures import (
    InputField,
    OutputField,
    Signature,
    ensure_signature,
    infer_prefix,
    make_signature,
)

if _typing.TYPE_CHECKING:
    from tgispy.evaluate import Evaluate
    from tgispy.lm._tgi import HFClientTGI
    from tgispy.teleprompt import (
        BootstrapFewShot,
        BootstrapFewShotWithRandomSearch,
        BootstrapRS,
        LabeledFewShot,
    )

__version__ = "0.1.0"

configure = settings.configure
context = settings.context

# name -> (module, attribute); attribute None means the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "HFClientTGI": ("tgispy.lm._tgi", "HFClientTGI"),
    "Evaluate": ("tgispy.evaluate", "Evaluate"),
    "LabeledFewShot": ("tgispy.teleprompt", "LabeledFewShot"),
    "BootstrapFewShot": ("tgispy.teleprompt", "BootstrapFewShot"),
    "BootstrapFewShotWithRandomSearch": ("tgispy.teleprompt", "BootstrapFewShotWithRandomSearch"),
    "BootstrapRS": ("tgispy.teleprompt", "BootstrapFewShotWithRandomSearch"),
    # DSPy 2.4's optimizers at top level (issue 17)
    "COPRO": ("tgispy.teleprompt", "COPRO"),
    "Ensemble": ("tgispy.teleprompt", "Ensemble"),
    "KNN": ("tgispy.predict", "KNN"),
    "MIPROv2": ("tgispy.teleprompt", "MIPROv2"),
    "evaluate": ("tgispy.evaluate", None),
    "teleprompt": ("tgispy.teleprompt", None),
    "utils": ("tgispy.utils", None),
    "adapters": ("tgispy.adapters", None),
    # DSPy 2.4's program surface (issue 16)
    "Assert": ("tgispy.primitives", "Assert"),
    "Suggest": ("tgispy.primitives", "Suggest"),
    "Constraint": ("tgispy.primitives", "Constraint"),
    "DSPyAssertionError": ("tgispy.primitives", "DSPyAssertionError"),
    "DSPySuggestionError": ("tgispy.primitives", "DSPySuggestionError"),
    "assert_transform_module": ("tgispy.primitives", "assert_transform_module"),
    "backtrack_handler": ("tgispy.primitives", "backtrack_handler"),
    "assert_no_except_handler": ("tgispy.primitives", "assert_no_except_handler"),
    "bypass_assert_handler": ("tgispy.primitives", "bypass_assert_handler"),
    "bypass_suggest_handler": ("tgispy.primitives", "bypass_suggest_handler"),
    "default_assertion_handler": ("tgispy.primitives", "default_assertion_handler"),
    "handle_assert_forward": ("tgispy.primitives", "handle_assert_forward"),
    "noop_handler": ("tgispy.primitives", "noop_handler"),
    "Retry": ("tgispy.predict", "Retry"),
    "BaseModule": ("tgispy.primitives", "BaseModule"),
    "ProgramMeta": ("tgispy.primitives", "ProgramMeta"),
    "set_attribute_by_name": ("tgispy.primitives", "set_attribute_by_name"),
    "SignatureMeta": ("tgispy.signatures", "SignatureMeta"),
    "OldField": ("tgispy.signatures", "OldField"),
    "OldInputField": ("tgispy.signatures", "OldInputField"),
    "OldOutputField": ("tgispy.signatures", "OldOutputField"),
    "move_kwargs": ("tgispy.signatures", "move_kwargs"),
    "new_to_old_field": ("tgispy.signatures", "new_to_old_field"),
    "signature_to_template": ("tgispy.signatures", "signature_to_template"),
    "update_signatures": ("tgispy.signatures", "update_signatures"),
    "dsp": ("tgispy.dsp", None),
    "TypedPredictor": ("tgispy.functional", "TypedPredictor"),
    "TypedChainOfThought": ("tgispy.functional", "TypedChainOfThought"),
    "FunctionalModule": ("tgispy.functional", "FunctionalModule"),
    "predictor": ("tgispy.functional", "predictor"),
    "cot": ("tgispy.functional", "cot"),
    "ReAct": ("tgispy.predict", "ReAct"),
    "MultiChainComparison": ("tgispy.predict", "MultiChainComparison"),
    "ChainOfThoughtWithHint": ("tgispy.predict", "ChainOfThoughtWithHint"),
    "majority": ("tgispy.predict", "majority"),
    "ProgramOfThought": ("tgispy.predict", "ProgramOfThought"),
    "PythonInterpreter": ("tgispy.primitives", "PythonInterpreter"),
    "CodePrompt": ("tgispy.primitives", "CodePrompt"),
    "TextPrompt": ("tgispy.primitives", "TextPrompt"),
    "InterpreterError": ("tgispy.primitives", "InterpreterError"),
    "Retrieve": ("tgispy.retrieve", "Retrieve"),
    "RetrieveThenRerank": ("tgispy.retrieve", "RetrieveThenRerank"),
    "retrieve": ("tgispy.retrieve", None),
    "functional": ("tgispy.functional", None),
    "ColBERTv2": ("tgispy.retrieve", "ColBERTv2"),
    "ColBERTv2RetrieverLocal": ("tgispy.retrieve", "ColBERTv2RetrieverLocal"),
    "ColBERTv2RerankerLocal": ("tgispy.retrieve", "ColBERTv2RerankerLocal"),
    "Pyserini": ("tgispy.retrieve", "Pyserini"),
    # every self-hosted engine (issue 15)
    "OpenAI": ("tgispy.lm._openai", "OpenAI"),
    "Together": ("tgispy.lm._openai", "Together"),
    "Anyscale": ("tgispy.lm._openai", "Anyscale"),
    "HFClientVLLM": ("tgispy.lm._vllm", "HFClientVLLM"),
    "LlamaCpp": ("tgispy.lm._llamacpp", "LlamaCpp"),
    "HFClientSGLang": ("tgispy.lm._vllm", "HFClientSGLang"),
    "OllamaLocal": ("tgispy.lm._ollama", "OllamaLocal"),
    **{name: ("tgispy.lm._provider", name) for name in _OUT_OF_SCOPE},
}


def __getattr__(name: str) -> _typing.Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'tgispy' has no attribute {name!r}")
    module_name, attribute = target
    module = _importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    _publish_object(__name__, value)  # e.g. HFClientTGI reports `tgispy`, not tgispy.lm._tgi
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


# HFClientTGI, Evaluate and the optimizers resolve lazily through __getattr__.
__all__ = [
    "COPRO",
    "KNN",
    "LM",
    "Assert",
    "BaseModule",
    "BootstrapFewShot",
    "BootstrapFewShotWithRandomSearch",
    "BootstrapRS",
    "ChainOfThought",
    "ChainOfThoughtWithHint",
    "CodePrompt",
    "ColBERTv2",
    "ColBERTv2RerankerLocal",
    "ColBERTv2RetrieverLocal",
    "Completions",
    "ConfigError",
    "Constraint",
    "DSPyAssertionError",
    "DSPySuggestionError",
    "Ensemble",
    "Evaluate",
    "Example",
    "FunctionalModule",
    "HFClientTGI",
    "InputField",
    "InterpreterError",
    "LabeledFewShot",
    "MIPROv2",
    "Module",
    "MultiChainComparison",
    "OldField",
    "OldInputField",
    "OldOutputField",
    "OutputField",
    "ParseError",
    "Predict",
    "Prediction",
    "Program",
    "ProgramMeta",
    "ProgramOfThought",
    "Pyserini",
    "PythonInterpreter",
    "ReAct",
    "Retrieve",
    "RetrieveThenRerank",
    "Retry",
    "Signature",
    "SignatureMeta",
    "Suggest",
    "TGIError",
    "TextPrompt",
    "TgispyError",
    "TypedChainOfThought",
    "TypedPredictor",
    "__version__",
    "assert_no_except_handler",
    "assert_transform_module",
    "backtrack_handler",
    "bypass_assert_handler",
    "bypass_suggest_handler",
    "configure",
    "context",
    "cot",
    "default_assertion_handler",
    "dsp",
    "ensure_signature",
    "functional",
    "handle_assert_forward",
    "infer_prefix",
    "inspect_history",
    "majority",
    "make_signature",
    "move_kwargs",
    "new_to_old_field",
    "noop_handler",
    "predictor",
    "retrieve",
    "set_attribute_by_name",
    "settings",
    "signature_to_template",
    "update_signatures",
]
# every self-hosted engine (issue 15), and DSPy 2.4's hosted clients that raise "out of scope"
__all__ += [
    "Anyscale",
    "HFClientSGLang",
    "HFClientVLLM",
    "LlamaCpp",
    "OllamaLocal",
    "OpenAI",
    "Together",
]
__all__.extend(_OUT_OF_SCOPE)

_publish(__name__, globals(), __all__)
