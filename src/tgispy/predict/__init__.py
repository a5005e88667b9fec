"""Predictors: ``Predict`` and ``ChainOfThought``."""

from tgispy._public import publish as _publish
from tgispy.predict._aggregation import majority
from tgispy.predict._chain_of_thought import ChainOfThought
from tgispy.predict._chain_of_thought_with_hint import ChainOfThoughtWithHint
from tgispy.predict._knn import KNN, LexicalVectorizer
from tgispy.predict._multi_chain_comparison import MultiChainComparison
from tgispy.predict._predict import Predict
from tgispy.predict._react import ReAct
from tgispy.predict._retry import Retry
from tgispy.primitives._module import Parameter

__all__ = [
    "KNN",
    "ChainOfThought",
    "ChainOfThoughtWithHint",
    "LexicalVectorizer",
    "MultiChainComparison",
    "Parameter",
    "Predict",
    "ProgramOfThought",
    "ReAct",
    "Retry",
    "majority",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)


# DSPy 2.4's module paths (``dspy.predict.<name>``), loaded on first attribute access.
_PATH_MODULES = frozenset(
    {
        "aggregation",
        "chain_of_thought",
        "chain_of_thought_with_hint",
        "multi_chain_comparison",
        "parameter",
        "predict",
        "program_of_thought",
        "react",
        "retry",
    }
)


def __getattr__(name: str) -> object:
    import importlib

    if name in _PATH_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "ProgramOfThought":  # loads the sandbox (subprocess) only when used
        value = importlib.import_module(f"{__name__}._program_of_thought").ProgramOfThought
        _publish(__name__, {name: value}, [name])
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
