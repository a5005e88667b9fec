"""Run ``tgispy serve`` as a subprocess: :class:`ServerProcess`, :func:`start_server`.

Used by tests, ``tgispy demo`` and the benchmarks: start ``python -m tgispy.server`` on a free
port of 127.0.0.1, wait for its readiness line and for ``/health`` to answer 200, and stop it
with SIGTERM (then SIGKILL), each step bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from tgispy.errors import UnavailableError

__all__ = ["ServerHandle", "ServerProcess", "start_server"]

_READY: Final = re.compile(r"tgispy serve: listening on (http://\S+)")
_STDERR_TAIL: Final = 4000


def _has_option(args: Sequence[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


class ServerHandle:
    """A running ``tgispy serve`` subprocess. Stop it with :meth:`stop` or a ``with`` block.

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:43121``.
        port: the TCP port.
        process: the :class:`subprocess.Popen` object.
    """

    def __init__(
        self,
        process: subprocess.Popen[str],
        url: str,
        stderr_path: Path,
        drain: threading.Thread,
    ) -> None:
        self.process = process
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self._stderr_path = stderr_path
        self._drain = drain

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.process.poll() is None

    def stderr_tail(self) -> str:
        """The end of the server's stderr (its logs), for error messages."""
        try:
            data = self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return data[-_STDERR_TAIL:]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit status."""
        proc = self.process
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        # The process is gone, so its stdout is at EOF and the drain thread ends by itself.
        self._drain.join(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        with contextlib.suppress(OSError):
            self._stderr_path.unlink()
        code = proc.returncode
        assert code is not None
        return code

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r}, pid={self.pid})"


class ServerProcess:
    """A recipe for a ``tgispy serve`` subprocess; :meth:`start` runs it.

    ``--host 127.0.0.1`` and ``--port 0`` (a free port) are added unless ``args`` set them.

    Example:
        >>> with ServerProcess(["--backend", "sim"]) as server:  # doctest: +SKIP
        ...     print(server.url)
        http://127.0.0.1:40313
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        timeout: float = 120.0,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.args = list(args)
        self.timeout = timeout
        self.env = env
        self.python = python
        self._handle: ServerHandle | None = None

    def command(self) -> list[str]:
        """The command line that :meth:`start` runs."""
        args = list(self.args)
        if not _has_option(args, "--host"):
            args += ["--host", "127.0.0.1"]
        if not _has_option(args, "--port"):
            args += ["--port", "0"]
        return [self.python, "-m", "tgispy.server", *args]

    def start(self) -> ServerHandle:
        """Start the server and wait until it is ready.

        Raises:
            UnavailableError: it exited, or was not ready within ``timeout`` seconds (the
                message includes the end of its stderr).
        """
        deadline = time.monotonic() + self.timeout
        fd, name = tempfile.mkstemp(prefix="tgispy-serve-", suffix=".log")
        stderr_path = Path(name)
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        with os.fdopen(fd, "w") as stderr_file:
            proc = subprocess.Popen(
                self.command(),
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        lines: queue.Queue[str | None] = queue.Queue()
        drain = threading.Thread(
            target=_drain, args=(proc.stdout, lines), name="tgispy-serve-stdout", daemon=True
        )
        drain.start()
        handle = ServerHandle(proc, "http://127.0.0.1:0", stderr_path, drain)
        try:
            url = self._wait_line(proc, lines, deadline)
            handle.url = url
            handle.port = int(url.rsplit(":", 1)[1])
            _wait_healthy(url, proc, deadline)
        except BaseException as exc:
            tail = handle.stderr_tail()
            handle.stop(timeout=5.0)
            if isinstance(exc, UnavailableError):
                exc.message = f"{exc.message}\n--- server stderr ---\n{tail}"
                exc.args = (exc.message,)
            raise
        self._handle = handle
        return handle

    def _wait_line(
        self, proc: subprocess.Popen[str], lines: queue.Queue[str | None], deadline: float
    ) -> str:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UnavailableError(
                    f"tgispy serve was not ready after {self.timeout:g} s: {self.command()}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                proc.wait(5.0)
                raise UnavailableError(
                    f"tgispy serve exited with status {proc.returncode} before it was ready: "
                    f"{self.command()}"
                )
            match = _READY.search(line)
            if match:
                return match.group(1)

    def __enter__(self) -> ServerHandle:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.stop()
            self._handle = None


def _drain(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    """Read the server's stdout until it closes (so its writes never block)."""
    if stream is None:
        lines.put(None)
        return
    with contextlib.suppress(ValueError, OSError):
        for line in stream:
            lines.put(line)
    lines.put(None)


def _wait_healthy(url: str, proc: subprocess.Popen[str], deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None:
            raise UnavailableError(f"tgispy serve exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise UnavailableError(f"{url}/health did not answer 200 in time")
        time.sleep(0.05)


def start_server(args: Sequence[str] = (), *, timeout: float = 120.0) -> ServerHandle:
    """Start ``tgispy serve`` with ``args`` on a free port of 127.0.0.1 and wait until ready.

    Example:
        >>> server = start_server(["--backend", "sim"])  # doctest: +SKIP
        >>> server.url  # doctest: +SKIP
        'http://127.0.0.1:40313'
        >>> server.stop()  # doctest: +SKIP
        0
    """
    return ServerProcess(args, timeout=timeout).start()
