"""Named programs run with DSPy 2.4.17 (the oracle) and with tgispy: same prompts, same results.

Each scenario is a function ``scenario(dspy, DummyLM) -> result`` written against the API both
libraries share; :func:`record` runs one and returns every prompt sent to the LM, the generation
parameters of each request, and the JSON-ready result (or the error's class and message).

Recording (outside the test suite, in a virtualenv with ``pip install dspy-ai==2.4.17``)::

    python tests/program/golden/dspy24_programs.py > tests/program/golden/dspy24_programs.json

The test suite replays every recorded scenario with tgispy (``test_programs_dspy24.py``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
from collections.abc import Callable
from typing import Any

import pydantic

Scenario = Callable[[Any, Any], Any]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def _pred(pred: Any) -> Any:
    return None if pred is None else dict(pred.items())


# ---- assertions -----------------------------------------------------------------------------


def _qa_program(dspy: Any, check: Callable[[Any, Any], None], cot: bool = True) -> Any:
    class QA(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            make = dspy.ChainOfThought if cot else dspy.Predict
            self.generate_answer = make("question -> answer")

        def forward(self, question: str) -> Any:
            pred = self.generate_answer(question=question)
            check(dspy, pred)
            return pred

    return QA()


def _one_word(dspy: Any, pred: Any) -> None:
    dspy.Suggest(len(pred.answer.split()) < 2, "Answer in one word.")


@scenario
def suggest_then_pass(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(
        lm=dummy_lm(["think\nAnswer: Paris, the city", "think more\nAnswer: Paris"])
    )
    program = _qa_program(dspy, _one_word).activate_assertions()
    return _pred(program(question="Capital of France?"))


@scenario
def suggest_always_fails_predict(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["two words", "still two", "again two", "four"]))
    program = _qa_program(dspy, _one_word, cot=False).activate_assertions()
    return _pred(program(question="Capital of France?"))


@scenario
def assert_fails_raises(dspy: Any, dummy_lm: Any) -> Any:
    def check(dspy: Any, pred: Any) -> None:
        dspy.Assert(pred.answer.startswith("P"), "The answer must start with P.\nTry again.")

    dspy.settings.configure(lm=dummy_lm(["r\nAnswer: Rome", "r2\nAnswer: Lyon", "r3\nAnswer: X"]))
    program = _qa_program(dspy, check).activate_assertions()
    return _pred(program(question="Capital of France?"))


@scenario
def two_feedback_messages(dspy: Any, dummy_lm: Any) -> Any:
    def check(dspy: Any, pred: Any) -> None:
        dspy.Suggest(len(pred.answer) < 12, "Be short.")
        dspy.Suggest(pred.answer.islower(), "Use lower case only.")

    dspy.settings.configure(
        lm=dummy_lm(["a\nAnswer: a long long answer", "b\nAnswer: Paris", "c\nAnswer: paris"])
    )
    program = _qa_program(dspy, check).activate_assertions(max_backtracks=3)
    return _pred(program(question="Capital?"))


@scenario
def target_module_and_two_predictors(dspy: Any, dummy_lm: Any) -> Any:
    class Pipeline(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.query = dspy.Predict("question -> search_query")
            self.answer = dspy.ChainOfThought("question, search_query -> answer")

        def forward(self, question: str) -> Any:
            q = self.query(question=question).search_query
            dspy.Suggest(
                "?" not in q, "The query must not be a question.", target_module=self.query
            )
            return self.answer(question=question, search_query=q)

    dspy.settings.configure(lm=dummy_lm(["where is paris?", "paris location", "r\nAnswer: France"]))
    program = dspy.assert_transform_module(Pipeline(), dspy.backtrack_handler)
    return _pred(program(question="Where is Paris?"))


@scenario
def retry_with_demos_and_backtrack_limit(dspy: Any, dummy_lm: Any) -> Any:
    import functools

    dspy.settings.configure(lm=dummy_lm(["Two words", "More words", "yet more"]))
    program = _qa_program(dspy, _one_word, cot=False)
    handler = functools.partial(dspy.backtrack_handler, max_backtracks=1)
    program = dspy.assert_transform_module(program, handler)
    program.generate_answer.demos = [dspy.Example(question="1+1?", answer="2")]
    return _pred(program(question="Capital of France?"))


@scenario
def suggest_without_activation_raises(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["two words"]))
    return _pred(_qa_program(dspy, _one_word, cot=False)(question="Q?"))


@scenario
def assert_bypassed_by_handler(dspy: Any, dummy_lm: Any) -> Any:
    def check(dspy: Any, pred: Any) -> None:
        dspy.Assert(False, "never")

    dspy.settings.configure(lm=dummy_lm(["one"]))
    program = dspy.assert_transform_module(
        _qa_program(dspy, check, cot=False), dspy.primitives.assertions.bypass_assert_handler
    )
    out = _pred(program(question="Q?"))
    noexcept = dspy.assert_transform_module(
        _qa_program(dspy, check, cot=False), dspy.primitives.assertions.assert_no_except_handler
    )
    return [out, _pred(noexcept(question="Q?"))]


# ---- typed predictors -----------------------------------------------------------------------


class Answer(pydantic.BaseModel):
    value: int
    note: str


def _typed_sig(dspy: Any, output_type: Any, *, name: str = "answer") -> Any:
    namespace: dict[str, Any] = {
        "__doc__": "Answer the question.",
        "__annotations__": {"question": str, name: output_type},
        "question": dspy.InputField(),
        name: dspy.OutputField(desc="the answer"),
    }
    return type("TypedQA", (dspy.Signature,), namespace)


@scenario
def typed_int(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["forty two", "42"]))
    pred = dspy.TypedPredictor("question -> answer: int")(question="6 times 7?")
    return {"answer": pred.answer, "type": type(pred.answer).__name__}


@scenario
def typed_bool_and_float(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["yes", "true", "3.5"]))
    flag = dspy.TypedPredictor(_typed_sig(dspy, bool))(question="Is it?").answer
    number = dspy.TypedPredictor(_typed_sig(dspy, float))(question="How much?").answer
    return [flag, number]


@scenario
def typed_pydantic_with_example_and_retries(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(
        lm=dummy_lm(
            [
                "not json",
                '{"value": 3, "note": "example"}',
                '{"value": "x", "note": "y"}',
                '```json\n{"value": 2, "note": "two"}\n```',
            ]
        )
    )
    pred = dspy.TypedPredictor(_typed_sig(dspy, Answer))(question="Which?")
    return pred.answer.model_dump()


@scenario
def typed_list_and_inputs(dspy: Any, dummy_lm: Any) -> Any:
    class Sig(dspy.Signature):
        """Pick numbers."""

        passages: list[str] = dspy.InputField()
        record: Answer = dspy.InputField()
        numbers: list[int] = dspy.InputField()
        picked: list[int] = dspy.OutputField()

    dspy.settings.configure(lm=dummy_lm(["one two", "[1, 2]", "[1, 2]"]))
    pred = dspy.TypedPredictor(Sig)(
        passages=["first one", "second"], record=Answer(value=1, note="n"), numbers=[3, 4]
    )
    return pred.picked


@scenario
def typed_chain_of_thought(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["so\nAnswer: 3.5 units", "we know\nAnswer: 3.5"]))
    program = dspy.TypedChainOfThought("question -> answer: float")
    pred = program(question="How much?")
    return [pred.reasoning, pred.answer]


@scenario
def typed_too_many_retries(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["a", "b", "c"]))
    return dspy.TypedPredictor("question -> answer: int", max_retries=2)(question="N?").answer


@scenario
def typed_explain_errors_and_demos(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(
        lm=dummy_lm(
            [
                "seven",
                "It wrote a word\nAdvice: Write digits only.",
                "7",
            ]
        )
    )
    program = dspy.TypedPredictor("question -> answer: int", explain_errors=True)
    program.predictor.demos = [dspy.Example(question="1+1?", answer=2)]
    return program(question="3+4?").answer


@scenario
def functional_module(dspy: Any, dummy_lm: Any) -> Any:
    class Calc(dspy.FunctionalModule):
        @dspy.predictor
        def double(self, number: int) -> int:
            """Double the number."""

        @dspy.cot
        def describe(self, number: int) -> str:
            """Describe the number in words."""

        def forward(self, number: int) -> Any:
            twice = self.double(number=number)
            return [twice, self.describe(number=twice)]

    dspy.settings.configure(lm=dummy_lm(["8", "it is even\nDescribe: eight"]))
    return Calc()(number=4)


# ---- modules and retrieval ------------------------------------------------------------------

_CORPUS = [
    "Paris is the capital of France.",
    "Rome is the capital of Italy.",
    "The Seine flows through Paris.",
    "Berlin is the capital of Germany.",
]


def _rm(dspy: Any) -> Any:
    import importlib

    # DSPy 2.4's own `dspy.dsp.utils` is shadowed by dsp.adapters.utils; import the module.
    utils = "dsp.utils.utils" if dspy.__name__ == "dspy" else "tgispy.dsp.utils.utils"
    dotdict = importlib.import_module(utils).dotdict

    def rm(query: str, k: int = 3, **kwargs: Any) -> list[Any]:
        words = set(query.lower().split())
        ranked = sorted(_CORPUS, key=lambda p: -len(words & set(p.lower().rstrip(".").split())))
        return [
            dotdict(long_text=p, prob=1.0 / (i + 1), score=float(10 - i), pid=i)
            for i, p in enumerate(ranked[:k])
        ]

    return rm


@scenario
def retrieve_passages(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(rm=_rm(dspy))
    one = dspy.Retrieve(k=2)("capital of France\nignored").passages
    many = dspy.Retrieve(k=2)(["capital of Italy", "Seine Paris"]).passages
    # with_metadata=True raised in DSPy 2.4.17 without a reranker (an inverted check); tgispy
    # returns the passages' fields. Not compared here.
    return [one, many]


@scenario
def react_with_search(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(
        rm=_rm(dspy),
        lm=dummy_lm(
            [
                "I should search.\nAction 1: Search[capital of France]\nObservation 1: x",
                "Paris it is.\nAction 2: Finish[Paris]",
            ]
        ),
    )
    pred = dspy.ReAct("question -> answer", max_iters=3)(question="What is the capital?")
    return dict(pred.items())


@scenario
def react_custom_tool_and_bad_action(dspy: Any, dummy_lm: Any) -> Any:
    class Calculator:
        name = "Calculate"
        input_variable = "expression"
        desc = "evaluates a sum like 2+3"

        def __call__(self, expression: str) -> str:
            return str(sum(int(x) for x in expression.split("+")))

    dspy.settings.configure(
        lm=dummy_lm(
            [
                "Add them.\nAction 1: Calculate[2+3]",
                "Hmm.\nAction 2: Jump[high]",
                "Done.\nAction 3: Finish[5]",
            ]
        )
    )
    program = dspy.ReAct("question -> answer", tools=[Calculator()], max_iters=3)
    return dict(program(question="What is 2+3?").items())


@scenario
def multi_chain_comparison(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["compare them. Paris is right.\nAnswer: Paris"]))
    attempts = [
        dspy.Prediction(rationale="recall the capital\nmore", answer="Paris"),
        dspy.Prediction(rationale="think of Lyon", answer="Lyon\nextra"),
        dspy.Prediction(rationale="  remember  ", answer=" Paris "),
    ]
    program = dspy.MultiChainComparison("question -> answer", M=3)
    return dict(program(completions=attempts, question="Capital of France?").items())


@scenario
def chain_of_thought_with_hint(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(
        lm=dummy_lm(
            [
                "think\nAnswer: Paris",
                "a hint\nReasoning: Let's think step by step in order to go\nAnswer: Paris",
            ]
        )
    )
    program = dspy.ChainOfThoughtWithHint("question, context -> answer")
    plain = program(question="Capital?", context="France")
    hinted = program(question="Capital?", context="France", hint="It is Paris.")
    return [dict(plain.items()), dict(hinted.items())]


@scenario
def majority_vote(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(lm=dummy_lm(["Paris", "rome", "paris.", "Rome"]))
    pred = dspy.Predict("question -> answer", n=4)(question="Capital?")
    lists = [dspy.Prediction(answer=a) for a in ["x", "", "y", "y"]]
    # Without field=, DSPy 2.4 raised KeyError for a Predict's completions (it indexed the
    # output fields dict with -1); tgispy takes the last output field. Not compared here.
    return [dict(dspy.majority(lists).items()), dict(dspy.majority(pred, field="answer").items())]


@scenario
def program_of_thought(dspy: Any, dummy_lm: Any) -> Any:
    dspy.settings.configure(
        lm=dummy_lm(
            [
                "multiply.\nCode:\n```python\nresult = six * 7\n```",
                "fix the name.\nCode:\n```python\nsix = 6\nresult = six * 7\n```",
                "it printed 42.\nAnswer: 42",
            ]
        )
    )
    pred = dspy.ProgramOfThought("question -> answer", max_iters=2)(question="6 times 7?")
    return dict(pred.items())


# ---- runner ---------------------------------------------------------------------------------


def record(dspy: Any, dummy_lm: Any, name: str) -> dict[str, Any]:
    """Run scenario ``name`` with library ``dspy``; return what the test compares."""
    lms: list[Any] = []

    def make_lm(answers: Any, **kwargs: Any) -> Any:
        lm = dummy_lm(answers, **kwargs)
        lms.append(lm)
        return lm

    out: dict[str, Any] = {"result": None, "error": None}
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # DSPy's DummyLM prints every prompt
            out["result"] = SCENARIOS[name](dspy, make_lm)
    except Exception as exc:
        out["error"] = [type(exc).__name__, str(exc)]
        if type(exc).__name__ in ("ValueError", "ParseError"):
            # DSPy 2.4 raised ValueError(message, errors); tgispy a ParseError (a ValueError)
            # with the same message and an ``errors`` attribute.
            errors = exc.args[1] if len(exc.args) > 1 else getattr(exc, "errors", None)
            out["error"] = ["ValueError", exc.args[0], errors]
    out["prompts"] = [entry["prompt"] for lm in lms for entry in lm.history]
    kwargs = []
    for lm in lms:
        for entry in lm.history:
            recorded = dict(entry.get("raw_kwargs", entry.get("kwargs")))
            recorded.pop("n", None)  # DSPy's DummyLM swallows `n`
            kwargs.append(recorded)
    out["kwargs"] = kwargs
    return out


def main() -> None:
    import dspy  # the oracle: dspy-ai==2.4.17
    from dspy.utils.dummies import DummyLM

    recorded = {}
    for name in SCENARIOS:
        dspy.settings.configure(lm=None, rm=None, trace=[])
        recorded[name] = record(dspy, DummyLM, name)
    header = {"dspy_version": importlib.metadata.version("dspy-ai")}
    out = {"recorded_with": header, "scenarios": recorded}
    print(json.dumps(out, ensure_ascii=False, indent=1, default=repr))


if __name__ == "__main__":
    main()
