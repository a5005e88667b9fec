"""``DummyLM``: a scripted language model for tests, compatible with DSPy 2.4's.

Example:
    >>> import tgispy as dspy
    >>> from tgispy.utils.dummies import DummyLM
    >>> lm = DummyLM(["4"])
    >>> dspy.configure(lm=lm)
    >>> dspy.Predict("question -> answer")(question="2+2?").answer
    '4'
    >>> lm.get_convo(-1).endswith("Answer: 4")
    True
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from tgispy.lm._base import LM, Capabilities, Completion, Generation

__all__ = ["DummyLM"]

logger = logging.getLogger(__name__)

NO_MORE_RESPONSES = "No more responses"


class DummyLM(LM):
    """Answer prompts from a script instead of a model.

    Args:
        answers: a list (each completion takes the next answer; then ``"No more responses"``), or
            a dict (the first value whose key is a substring of the prompt).
        follow_examples: answer with the value the demos in the prompt give for the field the
            prompt ends with, when there is one.
        chat: declare a chat API (:meth:`achat` answers messages from the same script).
        grammar: declare grammar support (requests then carry TGI's ``grammar``, recorded in
            :attr:`history` like any other parameter; the script still decides the text).

    The number of completions per call is the ``n`` generation parameter (default 1). Every call
    is recorded in :attr:`history` like a real LM's; :meth:`get_convo` shows prompt and answer.

    Example:
        >>> lm = DummyLM({"capital": "Paris"})
        >>> lm("What is the capital of France?")
        ['Paris']
    """

    provider = "dummy"

    def __init__(
        self,
        answers: Sequence[str] | Mapping[str, str],
        follow_examples: bool = False,
        *,
        chat: bool = False,
        grammar: bool = False,
    ) -> None:
        super().__init__("dummy-model")
        self._chat = chat
        self._grammar = grammar
        self.provider = "dummy"
        self.answers: Any = answers if isinstance(answers, Mapping) else list(answers)
        self.follow_examples = follow_examples
        self._lock = threading.Lock()

    async def acomplete(self, prompt: str, **kwargs: Any) -> Generation:
        n = int({**self.kwargs, **kwargs}.get("n") or 1)
        texts = [self._answer(prompt) for _ in range(n)]
        return Generation(
            prompt, tuple(Completion(text, finish_reason="simulated completion") for text in texts)
        )

    @property
    def capabilities(self) -> Capabilities:
        """What this double declares: ``chat=`` / ``grammar=``, or what a subclass overrides."""
        cls = type(self)
        return Capabilities(
            chat=self._chat or cls.achat is not DummyLM.achat,
            grammar=self._grammar or cls.supports_grammar is not DummyLM.supports_grammar,
        )

    async def supports_grammar(self) -> bool:
        return self._grammar

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """Answer chat ``messages`` from the script (``{"choices": [{"text": ...}]}``)."""
        prompt = "\n\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)
        generation = await self.acomplete(prompt, **kwargs)
        self.history.append(
            {
                "prompt": prompt,
                "messages": [dict(m) for m in messages],
                "response": generation.to_response(),
                "kwargs": {**self.kwargs, **kwargs},
                "raw_kwargs": kwargs,
            }
        )
        return generation.to_response()

    def _answer(self, prompt: str) -> str:
        if self.follow_examples:
            answer = _from_examples(prompt)
            if answer is not None:
                logger.debug("DummyLM found a previous example's value %r", answer)
                return answer
        answers = self.answers
        if isinstance(answers, Mapping):
            found = next((v for k, v in answers.items() if k in prompt), None)
            return NO_MORE_RESPONSES if found is None else found
        with self._lock:
            answers = self.answers
            if not answers:
                return NO_MORE_RESPONSES
            self.answers = answers[1:]
            return str(answers[0])

    def get_convo(self, index: int) -> str:
        """The prompt of call ``index`` followed by its (first) answer."""
        entry = self.history[index]
        return str(entry["prompt"]) + " " + str(entry["response"]["choices"][0]["text"])

    def __repr__(self) -> str:
        return (
            f"DummyLM(follow_examples={self.follow_examples}, chat={self._chat}, "
            f"grammar={self._grammar})"
        )


def _from_examples(prompt: str) -> str | None:
    # The prompt ends with the label of the field to produce; demos sit between the format section
    # and the query. The last match wins: the first ones come from the format section.
    prefix = prompt.rsplit("\n", maxsplit=1)[-1]
    parts = prompt.split("\n---\n")
    if len(parts) < 3:
        return None
    examples = "\n".join(parts[2:-1])
    found = re.findall(re.escape(prefix) + r"\s*(.*)", examples)
    return str(found[-1]) if found else None
