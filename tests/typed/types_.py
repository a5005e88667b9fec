"""Types and signatures shared by the typed-output tests.

Defined at module level so that their string annotations (``from __future__ import annotations``)
resolve.
"""

from __future__ import annotations

import enum
from typing import Literal, Optional

import pydantic

import tgispy as dspy


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Person(pydantic.BaseModel):
    name: str
    age: int
    city: str


class Node(pydantic.BaseModel):
    """A recursive model: its schema cannot be inlined."""

    value: int
    children: list[Node] = []


class Titled(pydantic.BaseModel):
    """A model with a field *named* title (kept when schema titles are dropped)."""

    title: str
    pages: int = pydantic.Field(ge=1)


class Arith(dspy.Signature):
    """Answer the arithmetic question with a number."""

    question: str = dspy.InputField()
    answer: int = dspy.OutputField()


class Extract(dspy.Signature):
    """Extract the person described in the text."""

    text: str = dspy.InputField()
    person: Person = dspy.OutputField(desc="the person mentioned")


class Sentiment(dspy.Signature):
    """Classify the sentiment of the review."""

    review: str = dspy.InputField()
    label: Literal["positive", "negative", "neutral"] = dspy.OutputField()


class Everything(dspy.Signature):
    """Every supported output type at once."""

    question: str = dspy.InputField()
    count: int = dspy.OutputField()
    ratio: float = dspy.OutputField()
    ok: bool = dspy.OutputField()
    note: str = dspy.OutputField()
    tags: list[str] = dspy.OutputField()
    scores: dict[str, int] = dspy.OutputField()
    label: Literal["a", "b"] = dspy.OutputField()
    color: Color = dspy.OutputField()
    person: Person = dspy.OutputField()
    maybe: Optional[int] = dspy.OutputField()
