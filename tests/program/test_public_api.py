"""The public surface: DSPy 2.4's names under `import tgispy as dspy`, lazy heavy imports."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys
import types
import typing

import pydantic
import pytest

import tgispy
import tgispy as dspy

DSPY_NAMES = [
    "Signature",
    "InputField",
    "OutputField",
    "Predict",
    "ChainOfThought",
    "Module",
    "Example",
    "Prediction",
    "Completions",
    "configure",
    "context",
    "settings",
    "inspect_history",
    "HFClientTGI",
    "LM",
    "Evaluate",
    "LabeledFewShot",
    "BootstrapFewShot",
    "BootstrapFewShotWithRandomSearch",
]


@pytest.mark.parametrize("name", DSPY_NAMES)
def test_dspy_names_are_importable(name: str) -> None:
    assert getattr(dspy, name) is not None


def test_public_names_are_pinned() -> None:
    assert sorted(tgispy.__all__) == sorted(
        [
            "LM",
            "BootstrapFewShot",
            "BootstrapFewShotWithRandomSearch",
            "BootstrapRS",
            "ChainOfThought",
            "Completions",
            "ConfigError",
            "Evaluate",
            "Example",
            "HFClientTGI",
            "InputField",
            "LabeledFewShot",
            "Module",
            "OutputField",
            "ParseError",
            "Predict",
            "Prediction",
            "Program",
            "Signature",
            "TGIError",
            "TgispyError",
            "__version__",
            "configure",
            "context",
            "ensure_signature",
            "infer_prefix",
            "inspect_history",
            "make_signature",
            "settings",
            # DSPy 2.4's program surface (issue 16)
            "Assert",
            "Suggest",
            "Constraint",
            "DSPyAssertionError",
            "DSPySuggestionError",
            "assert_transform_module",
            "backtrack_handler",
            "assert_no_except_handler",
            "bypass_assert_handler",
            "bypass_suggest_handler",
            "default_assertion_handler",
            "handle_assert_forward",
            "noop_handler",
            "Retry",
            "BaseModule",
            "ProgramMeta",
            "set_attribute_by_name",
            "SignatureMeta",
            "OldField",
            "OldInputField",
            "OldOutputField",
            "move_kwargs",
            "new_to_old_field",
            "signature_to_template",
            "update_signatures",
            "dsp",
            "TypedPredictor",
            "TypedChainOfThought",
            "FunctionalModule",
            "predictor",
            "cot",
            "ReAct",
            "MultiChainComparison",
            "ChainOfThoughtWithHint",
            "majority",
            "ProgramOfThought",
            "PythonInterpreter",
            "CodePrompt",
            "TextPrompt",
            "InterpreterError",
            "Retrieve",
            "RetrieveThenRerank",
            "retrieve",
            "functional",
            "ColBERTv2",
            "ColBERTv2RetrieverLocal",
            "ColBERTv2RerankerLocal",
            "Pyserini",
            # engines and out-of-scope clients (issue 15), optimizers (issue 17)
            "AWSAnthropic",
            "AWSMeta",
            "AWSMistral",
            "AWSModel",
            "Anyscale",
            "AzureOpenAI",
            "Bedrock",
            "COPRO",
            "ChatModuleClient",
            "Clarifai",
            "Claude",
            "CloudflareAI",
            "Cohere",
            "Databricks",
            "Ensemble",
            "GROQ",
            "Google",
            "GoogleVertexAI",
            "HFClientSGLang",
            "HFClientVLLM",
            "HFModel",
            "KNN",
            "LlamaCpp",
            "MIPROv2",
            "Mistral",
            "MultiOpenAI",
            "OllamaLocal",
            "OpenAI",
            "PremAI",
            "Sagemaker",
            "Snowflake",
            "Together",
            "Watsonx",
            "You",
        ]
    )


def test_hfclienttgi_is_the_tgi_client_loaded_on_first_use() -> None:
    from tgispy.lm._tgi import HFClientTGI

    assert dspy.HFClientTGI is HFClientTGI
    assert issubclass(dspy.HFClientTGI, dspy.LM)


def test_dummy_lm_path_and_unknown_names() -> None:
    from tgispy.utils.dummies import DummyLM

    assert dspy.utils.dummies.DummyLM is DummyLM
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = dspy.NoSuchThing
    assert "HFClientTGI" in dir(dspy) and "Evaluate" in dir(dspy)


def _is_private(module_name: str) -> bool:
    return any(part.startswith("_") for part in module_name.split("."))


# Every public package (found, so new ones are covered), and the public plain modules whose
# __all__ is API users import from.
PACKAGES = ["tgispy"] + [
    info.name
    for info in pkgutil.walk_packages(tgispy.__path__, "tgispy.", onerror=lambda name: None)
    if info.ispkg and not _is_private(info.name)
]
PUBLIC_MODULES = [*PACKAGES, "tgispy.errors", "tgispy.testing", "tgispy.utils.dummies"]


def _public_objects() -> list[tuple[str, str, object]]:
    out = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            # Functions re-exported by plain modules (tgispy.testing) may keep their home.
            is_function = inspect.isfunction(value) and module_name in PACKAGES
            if inspect.isclass(value) or is_function:
                out.append((module_name, name, value))
    return out


@pytest.mark.parametrize("module_name", PACKAGES)
def test_dir_shows_only_the_public_api(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert dir(module) == sorted(module.__all__)
    assert all(not name.startswith("_") or name == "__version__" for name in module.__all__)
    for name in module.__all__:  # every listed name resolves (lazy ones included)
        assert getattr(module, name) is not None


def test_dir_of_tgispy_hides_helpers() -> None:
    leaked = {"Any", "TYPE_CHECKING", "annotations", "importlib", "_LAZY", "lm", "errors"}
    assert leaked.isdisjoint(dir(tgispy))
    # every lazily loaded object is public API (lazily loaded submodules may stay unlisted)
    lazy_objects = {name for name, (_, attribute) in tgispy._LAZY.items() if attribute is not None}
    assert lazy_objects <= set(dir(tgispy))


@pytest.mark.parametrize(
    ("module_name", "name", "obj"),
    _public_objects(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_public_objects_report_a_public_module_that_exports_them(
    module_name: str, name: str, obj: typing.Any
) -> None:
    home = obj.__module__
    assert not _is_private(home), f"{module_name}.{name} reports {home}"
    assert getattr(importlib.import_module(home), obj.__qualname__) is obj
    # Pickles name classes and functions by __module__ + __qualname__: they must round-trip.
    assert pickle.loads(pickle.dumps(obj)) is obj
    if inspect.isclass(obj):
        typing.get_type_hints(obj)  # string annotations still resolve after the move


def test_module_names_of_well_known_classes() -> None:
    from tgispy.tgi import RetryPolicy

    assert dspy.Predict.__module__ == "tgispy.predict"
    assert dspy.Example.__module__ == "tgispy.primitives"
    assert dspy.Signature.__module__ == "tgispy.signatures"
    assert dspy.inspect_history.__module__ == "tgispy"
    assert dspy.HFClientTGI.__module__ == "tgispy"
    assert RetryPolicy.__module__ == "tgispy.tgi"
    assert repr(dspy.Predict) == "<class 'tgispy.predict.Predict'>"


def test_instances_pickle_through_the_public_modules() -> None:
    from tgispy.lm import Completion
    from tgispy.tgi import RetryPolicy, Timeout

    example = dspy.Example(question="2+2?", answer="4").with_inputs("question")
    prediction = dspy.Prediction(answer="4")
    for value, home in (
        (example, b"tgispy.primitives"),
        (RetryPolicy(max_attempts=5), b"tgispy.tgi"),
        (Timeout(total=3.0), b"tgispy.tgi"),
    ):
        data = pickle.dumps(value)
        assert home in data and home + b"._" not in data
        assert pickle.loads(data) == value
    assert pickle.loads(pickle.dumps(prediction)).answer == "4"
    assert [f.name for f in dataclasses.fields(Completion)]  # dataclass machinery intact


def test_publish_keeps_annotations_resolvable(monkeypatch: pytest.MonkeyPatch) -> None:
    from tgispy._public import publish

    private = types.ModuleType("fakepkg._impl")
    public = types.ModuleType("fakepkg")
    monkeypatch.setitem(sys.modules, "fakepkg._impl", private)
    monkeypatch.setitem(sys.modules, "fakepkg", public)
    source = (
        "from __future__ import annotations\n"
        "import dataclasses\n"
        "from typing import Any\n"
        "@dataclasses.dataclass\n"
        "class Thing:\n"
        "    value: Any\n"
        "    later: Missing | None = None\n"  # a TYPE_CHECKING-only name: stays a string
    )
    exec(compile(source, "fakepkg/_impl.py", "exec"), vars(private))
    thing = private.Thing
    public.Thing = thing
    publish("fakepkg", vars(public), ["Thing"])
    assert thing.__module__ == "fakepkg"
    assert inspect.get_annotations(thing) == {"value": typing.Any, "later": "Missing | None"}
    assert dataclasses.fields(thing)[0].type is typing.Any
    assert pickle.loads(pickle.dumps(thing(1))) == thing(1)
    publish("fakepkg", {"Example": dspy.Example}, ["Example"])  # another package's: untouched
    assert dspy.Example.__module__ == "tgispy.primitives"


def test_pydantic_resolves_public_dataclasses() -> None:
    from tgispy.tgi import RetryPolicy

    class Config(pydantic.BaseModel):
        retry: RetryPolicy

    policy = Config.model_validate({"retry": {"max_attempts": 7}}).retry
    assert isinstance(policy, RetryPolicy) and policy.max_attempts == 7


def test_configure_and_context_are_the_settings_methods() -> None:
    assert dspy.configure.__func__ is dspy.settings.configure.__func__
    assert dspy.context.__func__ is dspy.settings.context.__func__


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, tgispy as dspy\n"
        "dspy.ChainOfThought('question -> answer')\n"
        "heavy = ['aiohttp', 'diskcache', 'jsonschema', 'pydantic', 'tqdm', 'tgispy.lm._tgi']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
