"""Values passed between the HTTP front and the engines (llama.cpp or the simulator)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "Backend",
    "EngineEnd",
    "EngineGrammar",
    "EngineRequest",
    "Sampling",
    "TokenOut",
]


@dataclass(frozen=True, slots=True)
class TokenOut:
    """One generated token as TGI reports it (``special`` is true for EOS and other controls)."""

    id: int
    text: str
    logprob: float | None
    special: bool = False
    #: the ``top_n_tokens`` most likely tokens at this step (empty unless asked for)
    top: tuple[TokenOut, ...] = ()


@dataclass(frozen=True, slots=True)
class Sampling:
    """Resolved sampling settings, TGI's neutral values meaning "off"."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    typical_p: float = 1.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    #: the sampling seed (``None`` for greedy requests)
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class EngineGrammar:
    """A generation constraint in the engine's terms.

    ``kind="json_schema"``: ``value`` is a JSON schema (dict). ``kind="lark"``: ``value`` is a
    llguidance Lark grammar (string) as llama.cpp accepts in its ``grammar`` field.
    """

    kind: Literal["json_schema", "lark"]
    value: Any


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """One sequence to generate."""

    #: prompt text, or token ids when the prompt was truncated
    prompt: str | tuple[int, ...]
    max_new_tokens: int
    sampling: Sampling
    top_n_tokens: int = 0
    grammar: EngineGrammar | None = None


@dataclass(frozen=True, slots=True)
class EngineEnd:
    """The engine finished a sequence (after its last token, EOS included)."""

    reason: Literal["length", "eos_token"]
    prompt_tokens: int


class Backend(Protocol):
    """What the HTTP front needs from an engine. Implemented by the llama and sim backends."""

    #: ``"llama"`` or ``"sim"``
    name: str
    #: the model description printed in the readiness line
    description: str

    @property
    def ready(self) -> bool:
        """Whether :meth:`start` has completed (``/health`` answers 200)."""
        ...

    async def start(self) -> None:
        """Load the model; called once before the first request."""
        ...

    async def aclose(self) -> None:
        """Stop generating and free the model."""
        ...

    def stream(self, request: EngineRequest) -> AsyncGenerator[TokenOut | EngineEnd, None]:
        """Generate: yield tokens then one :class:`EngineEnd`. Closing the iterator cancels."""
        ...

    async def tokenize(self, text: str) -> list[tuple[int, bytes]]:
        """Token ids and the bytes of each token, as the engine tokenizes a prompt."""
        ...

    async def count_tokens(self, text: str) -> int:
        """Number of tokens the engine makes of ``text`` as a prompt."""
        ...

    def token_upper_bound(self, text: str) -> int:
        """A cheap bound ``>= count_tokens(text)``, used to skip tokenizing short prompts."""
        ...

    async def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """Render chat messages into a prompt ending with the assistant's turn."""
        ...
