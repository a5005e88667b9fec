"""``Ensemble``: one program that runs several and reduces their outputs (DSPy 2.4)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Any

from tgispy.errors import ConfigError
from tgispy.evaluate._runner import async_entry
from tgispy.primitives import Module
from tgispy.teleprompt._teleprompter import Teleprompter

__all__ = ["Ensemble", "EnsembledProgram"]


class EnsembledProgram(Module):
    """Runs ``size`` randomly chosen programs (all when ``size`` is ``None``) on each call.

    The async face runs them concurrently; the result is ``reduce_fn(outputs)``, or the list of
    outputs without a ``reduce_fn``.
    """

    def __init__(
        self,
        programs: Sequence[Any],
        size: int | None = None,
        reduce_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        self.programs = list(programs)
        self.size = size
        self.reduce_fn = reduce_fn

    def _chosen(self) -> list[Any]:
        return random.sample(self.programs, self.size) if self.size else self.programs

    def _reduce(self, outputs: list[Any]) -> Any:
        return self.reduce_fn(outputs) if self.reduce_fn else outputs

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._reduce([program(*args, **kwargs) for program in self._chosen()])

    async def aforward(self, *args: Any, **kwargs: Any) -> Any:
        async def run(program: Any) -> Any:
            entry = async_entry(program)
            if entry is not None:
                return await entry(*args, **kwargs)
            return await asyncio.to_thread(program, *args, **kwargs)

        outputs = await asyncio.gather(*(run(program) for program in self._chosen()))
        return self._reduce(list(outputs))


class Ensemble(Teleprompter):
    """Combine programs into one: each call runs them (or ``size`` random ones) and reduces.

    Args:
        reduce_fn: e.g. ``dspy.majority``; ``None`` returns the list of outputs.
        size: how many programs each call samples; ``None`` runs all.
        deterministic: must be ``False`` (as in DSPy 2.4).

    Example:
        >>> import tgispy as dspy
        >>> programs = [dspy.Predict("question -> answer") for _ in range(3)]
        >>> ensembled = Ensemble(size=2).compile(programs)
        >>> len(ensembled.programs)
        3
    """

    def __init__(
        self,
        *,
        reduce_fn: Callable[[list[Any]], Any] | None = None,
        size: int | None = None,
        deterministic: bool = False,
    ) -> None:
        if deterministic is not False:
            raise ConfigError("Ensemble(deterministic=True) is not implemented (nor in DSPy 2.4)")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(f"size must be an int >= 1 or None, got {size!r}")
        self.reduce_fn = reduce_fn
        self.size = size
        self.deterministic = deterministic

    def compile(self, programs: Sequence[Any]) -> EnsembledProgram:  # type: ignore[override]
        """An :class:`EnsembledProgram` over ``programs``."""
        programs = list(programs)
        if self.size is not None and self.size > len(programs):
            raise ConfigError(f"size={self.size} is more than the {len(programs)} programs given")
        return EnsembledProgram(programs, self.size, self.reduce_fn)
