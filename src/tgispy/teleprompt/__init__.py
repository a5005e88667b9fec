"""Optimizers ("teleprompters"): compile a program's demos from training examples.

Example:
    >>> import tgispy as dspy
    >>> from tgispy.teleprompt import LabeledFewShot
    >>> trainset = [dspy.Example(question="2+2?", answer="4").with_inputs("question")]
    >>> LabeledFewShot(k=1).compile(dspy.Predict("question -> answer"), trainset=trainset).demos
    [Example({'question': '2+2?', 'answer': '4'}) (input_keys={'question'})]
"""

import tgispy as dspy
from tgispy import dsp
from tgispy._public import publish as _publish
from tgispy.evaluate import Evaluate
from tgispy.predict._knn import KNN
from tgispy.primitives import Example
from tgispy.signatures import signature_to_template
from tgispy.teleprompt._avatar import (
    ActionOutput,
    AvatarOptimizer,
    Comparator,
    EvalResult,
    FeedbackBasedInstruction,
)
from tgispy.teleprompt._bootstrap import BootstrapFewShot
from tgispy.teleprompt._copro import COPRO, SignatureOptimizer
from tgispy.teleprompt._ensemble import Ensemble, EnsembledProgram
from tgispy.teleprompt._finetune import BootstrapFinetune, FinetuneOutOfScopeError
from tgispy.teleprompt._knn_fewshot import KNNFewShot
from tgispy.teleprompt._labeled import LabeledFewShot
from tgispy.teleprompt._mipro import MIPRO, BayesianSignatureOptimizer
from tgispy.teleprompt._mipro_v2 import MIPROv2
from tgispy.teleprompt._optuna import BootstrapFewShotWithOptuna
from tgispy.teleprompt._random_search import BootstrapFewShotWithRandomSearch, BootstrapRS
from tgispy.teleprompt._teleprompter import Teleprompter

__all__ = [
    "COPRO",
    "KNN",
    "MIPRO",
    "ActionOutput",
    "AvatarOptimizer",
    "BayesianSignatureOptimizer",
    "BootstrapFewShot",
    "BootstrapFewShotWithOptuna",
    "BootstrapFewShotWithRandomSearch",
    "BootstrapFinetune",
    "BootstrapRS",
    "Comparator",
    "Ensemble",
    "EnsembledProgram",
    "EvalResult",
    "Evaluate",
    "Example",
    "FeedbackBasedInstruction",
    "FinetuneOutOfScopeError",
    "KNNFewShot",
    "LabeledFewShot",
    "MIPROv2",
    "SignatureOptimizer",
    "Teleprompter",
    "dsp",
    "dspy",
    "signature_to_template",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
