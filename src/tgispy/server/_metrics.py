"""Request metrics in Prometheus' text format, named after TGI's (``tgi_request_*``).

Plain counters updated on the event loop thread; formatting happens only when ``/metrics`` is
scraped, so recording costs a few integer additions per request.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

__all__ = ["Metrics"]

_DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
_TOKEN_BUCKETS: Final = (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0)


class _Histogram:
    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.count += 1
        self.total += value

    def render(self, name: str, help_text: str) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, n in zip(self.buckets, self.counts, strict=False):
            cumulative += n
            lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.total}")
        lines.append(f"{name}_count {self.count}")
        return lines


class Metrics:
    """The server's counters, gauges and histograms.

    Example:
        >>> m = Metrics()
        >>> m.request_started()
        >>> m.request_succeeded(duration_s=0.2, input_tokens=5, generated_tokens=10)
        >>> "tgi_request_success 1" in m.render(in_flight=0, ready=True)
        True
    """

    def __init__(self) -> None:
        self.requests = 0
        self.successes = 0
        self.failures: dict[str, int] = {}
        self.duration = _Histogram(_DURATION_BUCKETS)
        self.input_tokens = _Histogram(_TOKEN_BUCKETS)
        self.generated_tokens = _Histogram(_TOKEN_BUCKETS)

    def request_started(self) -> None:
        """Count a generation request."""
        self.requests += 1

    def request_rejected(self) -> None:
        """Uncount a request rejected before validation (TGI counts only those it handles)."""
        self.requests -= 1

    def request_succeeded(
        self, *, duration_s: float, input_tokens: int, generated_tokens: int
    ) -> None:
        """Record a finished generation."""
        self.successes += 1
        self.duration.observe(duration_s)
        self.input_tokens.observe(input_tokens)
        self.generated_tokens.observe(generated_tokens)

    def request_failed(self, error_type: str) -> None:
        """Record a failed request by TGI ``error_type``."""
        self.failures[error_type] = self.failures.get(error_type, 0) + 1

    def render(self, *, in_flight: int, ready: bool) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        lines = [
            "# HELP tgi_request_count Generation requests received.",
            "# TYPE tgi_request_count counter",
            f"tgi_request_count {self.requests}",
            "# HELP tgi_request_success Generation requests that succeeded.",
            "# TYPE tgi_request_success counter",
            f"tgi_request_success {self.successes}",
            "# HELP tgi_request_failure Requests that failed, by error type.",
            "# TYPE tgi_request_failure counter",
        ]
        lines += [f'tgi_request_failure{{err="{k}"}} {v}' for k, v in sorted(self.failures.items())]
        lines += [
            "# HELP tgi_batch_current_size Requests in flight.",
            "# TYPE tgi_batch_current_size gauge",
            f"tgi_batch_current_size {in_flight}",
            "# HELP tgispy_ready Whether the model is loaded.",
            "# TYPE tgispy_ready gauge",
            f"tgispy_ready {int(ready)}",
        ]
        lines += self.duration.render("tgi_request_duration", "Request duration in seconds.")
        lines += self.input_tokens.render("tgi_request_input_length", "Prompt tokens.")
        lines += self.generated_tokens.render("tgi_request_generated_tokens", "Generated tokens.")
        return "\n".join(lines) + "\n"
