"""``BootstrapFinetune``: bootstrap traces and write the fine-tuning data; training is out of scope.

None of the engines tgispy talks to (TGI, vLLM, SGLang, llama.cpp, Ollama) fine-tunes. What is
useful and honest: run DSPy 2.4's bootstrap, write each predictor's ``<prompt, completion>`` pairs
as JSON Lines in the two formats TRL's ``SFTTrainer`` (and LoRA recipes built on it) read, then
stop with an error that names the files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tgispy.adapters._template import template_for
from tgispy.errors import TgispyError
from tgispy.primitives import Example
from tgispy.teleprompt._bootstrap import BootstrapFewShot
from tgispy.teleprompt._teleprompter import Teleprompter, check_module

__all__ = ["BootstrapFinetune", "FinetuneOutOfScopeError", "training_data_directory"]

logger = logging.getLogger(__name__)


def training_data_directory() -> Path:
    """Where the data goes: ``$DSP_NOTEBOOK_CACHEDIR/compiler`` or ``local_cache/compiler``."""
    root = os.environ.get("DSP_NOTEBOOK_CACHEDIR")
    return Path(root) / "compiler" if root else Path("local_cache") / "compiler"


class FinetuneOutOfScopeError(TgispyError, NotImplementedError):
    """Fine-tuning data was written, but training a model is out of tgispy's scope.

    Attributes:
        paths: ``{name: {"completion": path, "chat": path}}`` of the JSONL files written.
    """

    def __init__(self, message: str, paths: Mapping[str, Mapping[str, str]]) -> None:
        super().__init__(message)
        self.paths = {k: dict(v) for k, v in paths.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.paths))


class BootstrapFinetune(Teleprompter):
    """Bootstrap traces and write the fine-tuning dataset (training itself is out of scope).

    ``compile`` runs ``BootstrapFewShot(max_bootstrapped_demos=999999, max_labeled_demos=0)`` with
    each teacher, turns every bootstrapped demo of every predictor into a pair: the prompt DSPy
    2.4's template builds for the demo's inputs (no demos) and the last output field's value.
    Pairs are grouped under ``"all"`` (``multitask=True``) or per predictor, shuffled with
    ``random.Random(0)``, and written to ``<name>.<hash>.jsonl`` (``{"prompt", "completion"}``,
    DSPy 2.4's file and TRL's prompt-completion format) and ``<name>.<hash>.chat.jsonl``
    (``{"messages": [user, assistant]}``, TRL's conversational format) under
    :func:`training_data_directory` (or ``path_prefix``). Then it raises
    :class:`FinetuneOutOfScopeError` naming the files.

    Args:
        metric: keep traces the metric accepts (``None``: every trace).
        teacher_settings: settings for the teachers' runs.
        multitask: one dataset for all predictors.

    Example:
        >>> BootstrapFinetune(multitask=False).multitask
        False
    """

    def __init__(
        self,
        metric: Callable[..., Any] | None = None,
        teacher_settings: Mapping[str, Any] | None = None,
        multitask: bool = True,
    ) -> None:
        self.metric = metric
        self.teacher_settings: dict[str, Any] = dict(teacher_settings or {})
        self.multitask = multitask
        self.teleprompter = BootstrapFewShot(
            metric=metric or (lambda *args: True),
            max_bootstrapped_demos=999999,
            max_labeled_demos=0,
            teacher_settings=self.teacher_settings,
        )

    def compile(  # type: ignore[override]
        self,
        student: Any,
        *,
        teacher: Any = None,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        target: str = "t5-large",
        bsize: int = 12,
        accumsteps: int = 1,
        lr: float = 5e-5,
        epochs: int = 1,
        bf16: bool = False,
        int8: bool = False,
        peft: bool = False,
        path_prefix: str | None = None,
    ) -> Any:
        """Write the fine-tuning data, then raise :class:`FinetuneOutOfScopeError`."""
        check_module(student)
        if teacher is None:
            logger.warning(
                "Using a vanilla teacher. Are you sure you want to use BootstrapFinetune without "
                "a compiled teacher?"
            )
        teachers = teacher if isinstance(teacher, list) else [teacher]
        data: dict[str, list[dict[str, str]]] = {}
        for one_teacher in teachers:
            compiled = self.teleprompter.compile(student, teacher=one_teacher, trainset=trainset)
            for name, predictor in compiled.named_predictors():
                key = "all" if self.multitask else name
                rows = data.setdefault(key, [])
                template = template_for(predictor.signature)
                *_, last_key = template.fields
                for demo in predictor.demos:
                    record = dict(demo.items()) if isinstance(demo, Example) else dict(demo)
                    completion = record.pop(last_key.key)
                    prompt = template.query(record, augmented=False).strip()
                    rows.append({"prompt": prompt, "completion": str(completion)})
        for rows in data.values():
            random.Random(0).shuffle(rows)
        directory = Path(path_prefix) if path_prefix else training_data_directory()
        directory.mkdir(parents=True, exist_ok=True)
        paths: dict[str, dict[str, str]] = {}
        for name, rows in data.items():
            digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]
            completion_path = directory / f"{name}.{digest}.jsonl"
            chat_path = directory / f"{name}.{digest}.chat.jsonl"
            with completion_path.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            with chat_path.open("w", encoding="utf-8") as f:
                for row in rows:
                    messages = [
                        {"role": "user", "content": row["prompt"]},
                        {"role": "assistant", "content": row["completion"]},
                    ]
                    f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
            paths[name] = {"completion": str(completion_path), "chat": str(chat_path)}
            logger.info("%s: %d examples written to %s", name, len(rows), completion_path)
        listing = "; ".join(
            f"{name}: {p['completion']} (prompt/completion) and {p['chat']} (chat messages), "
            f"{len(data[name])} examples"
            for name, p in paths.items()
        )
        raise FinetuneOutOfScopeError(
            f"BootstrapFinetune wrote the fine-tuning data -- {listing}. Training {target!r} is "
            "out of tgispy's scope (none of the serving engines fine-tunes): train with e.g. "
            "TRL's SFTTrainer on these files, serve the result (a LoRA adapter on TGI with "
            "--lora-adapters), and point HFClientTGI at it.",
            paths,
        )
