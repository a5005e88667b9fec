"""The default llama.cpp thread count of ``tgispy serve``: the machine's usable cores minus one.

Measured on a 2-core machine shared with other work (SmolLM2-135M, ``/generate``, 48 tokens,
greedy, one slot; issue 20): tokens per second with K busy processes beside the server, medians
of 3 requests, two runs (machine load about 4-6, then 2.5-3.5):

=========  =========  =========  =========
threads    K = 0      K = 1      K = 2
=========  =========  =========  =========
1          77, 70     19, 30     11, 16
2 (cores)  10, 11     1.3, 2.8   1.1, 1.5
=========  =========  =========  =========

With 4 streams on 4 slots: 87 and 47 tok/s on one thread, 4 to 53 (erratic) on two. llama.cpp's
threads spin-wait for each other at every step, so one that loses its core to another process
stalls them all; a thread per core collapses under any background load, while ``cores - 1``
leaves a core for the HTTP server, tokenization and the rest of the machine (on 2 cores, ``cores
- 1`` is 1, the best measured). Cores are physical cores (hyperthread siblings count once: they
share the units llama.cpp saturates), within the process's CPU affinity and cgroup CPU quota.
``--threads N`` overrides the choice.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["auto_threads", "choose_threads", "usable_cores"]

_SYS_CPU = Path("/sys/devices/system/cpu")
_CGROUP = Path("/sys/fs/cgroup")


def choose_threads(cpus: int, cores: int | None = None, quota: float | None = None) -> int:
    """Threads for llama.cpp: the usable cores minus one, at least one.

    Args:
        cpus: logical CPUs the process may run on (its affinity).
        cores: physical cores among them (``None``: unknown, taken as ``cpus``).
        quota: the cgroup's CPU quota in CPUs (``None``: no quota).

    Example:
        >>> choose_threads(2), choose_threads(16, cores=8), choose_threads(64, quota=4.0)
        (1, 7, 3)
    """
    usable = min(cpus, cores or cpus)
    if quota is not None:
        usable = min(usable, max(1, math.floor(quota)))
    return max(1, usable - 1)


def _physical_cores(cpus: set[int]) -> int | None:
    siblings = set()
    for cpu in cpus:
        path = _SYS_CPU / f"cpu{cpu}" / "topology" / "core_cpus_list"
        if not path.exists():
            path = path.with_name("thread_siblings_list")
        try:
            siblings.add(path.read_text().strip())
        except OSError:
            return None
    return len(siblings) or None


def _cgroup_quota() -> float | None:
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = (_CGROUP / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: a quota of -1 is none
        quota_us = int((_CGROUP / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((_CGROUP / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def usable_cores() -> tuple[int, int | None, float | None]:
    """This process's (logical CPUs, physical cores among them, cgroup quota in CPUs)."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1, None, None
    return len(cpus), _physical_cores(cpus), _cgroup_quota()


def auto_threads() -> int:
    """:func:`choose_threads` for this machine (``tgispy serve``'s default ``--threads``).

    Example:
        >>> auto_threads() >= 1
        True
    """
    return choose_threads(*usable_cores())
