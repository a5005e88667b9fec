"""The persistent tier: JSON text in a private diskcache (SQLite) directory.

Safety properties, each tested:

* values are JSON text stored inline in SQLite: nothing is pickled, no value files are written, and
  an entry that is not JSON text (say, a pickle someone else wrote) is refused, never loaded;
* the directory is created 0700 and the database (with its ``-wal``/``-shm`` files, which SQLite
  creates with the database's mode) 0600, whatever the umask;
* a broken cache never breaks a call: an unreadable entry is a miss (logged at DEBUG), a failed
  write is logged (WARNING once, then DEBUG), and a directory that cannot be opened turns the tier
  off with one WARNING naming the directory and ``TGISPY_CACHEDIR``.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tgispy.cache._keys import decode_value, encode_value
from tgispy.cache._keyset import KeyFilter, KeyLoader
from tgispy.cache._worker import DiskWorker
from tgispy.errors import ConfigError

__all__ = ["CACHEDIR_ENV", "DiskCache", "default_cache_dir"]

logger = logging.getLogger(__name__)

#: Environment variable naming the disk cache directory; one of ``_OFF_VALUES`` turns it off.
CACHEDIR_ENV = "TGISPY_CACHEDIR"
_OFF_VALUES = frozenset({"", "off", "0", "false", "no", "none"})

#: SQLite busy timeout: a cache that waits long on a lock is worse than a miss.
_SQLITE_TIMEOUT_S = 5.0


def default_cache_dir() -> Path | None:
    """The disk cache directory from the environment, or None when the disk tier is turned off.

    ``$TGISPY_CACHEDIR`` when set; set to ``""``, ``off``, ``0``, ``false``, ``no`` or ``none``
    (any case) it turns the disk tier off. Unset: ``$XDG_CACHE_HOME/tgispy`` when that is an
    absolute path, else ``~/.cache/tgispy``.

    Example:
        >>> print(default_cache_dir())  # doctest: +SKIP
        /home/me/.cache/tgispy
    """
    raw = os.environ.get(CACHEDIR_ENV)
    if raw is not None:
        if raw.strip().lower() in _OFF_VALUES:
            return None
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "tgispy"


class _ForeignEntryError(ValueError):
    """A disk entry that tgispy did not write (not inline JSON text); read as a miss."""


_FOREIGN_KEY = object()


@functools.cache
def _json_text_disk() -> type[Any]:
    # Built on first use so that importing tgispy.cache does not import diskcache.
    import diskcache
    from diskcache.core import MODE_RAW, UNKNOWN

    class JSONTextDisk(diskcache.Disk):  # type: ignore[misc]
        """Serialization that only knows JSON text kept inline: no pickle, no value files."""

        def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, None, str]:
            if read or type(value) is not str:
                raise TypeError("tgispy's disk cache stores only JSON text")
            return 0, MODE_RAW, None, value

        def get(self, key: Any, raw: bool) -> Any:
            # Keys are only read back when listing them (the key filter's load): a key tgispy
            # did not write (pickled) is never unpickled, just skipped.
            return super().get(key, raw) if raw else _FOREIGN_KEY

        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> str:
            if mode != MODE_RAW or filename is not None or type(value) is not str:
                raise _ForeignEntryError(f"entry in mode {mode} is not inline JSON text")
            return value

    return JSONTextDisk


def _make_private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not directory.is_dir():
            raise NotADirectoryError(f"{directory} exists and is not a directory") from None
        # An existing directory keeps its mode: the user chose it (the files stay 0600). But one
        # that others may write to (or that another user owns) lets them swap the database for
        # their own, that is, choose what the cache answers: refuse it.
        info = directory.stat()
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise PermissionError(
                f"{directory} belongs to another user (uid {info.st_uid})"
            ) from None
        if info.st_mode & 0o022:
            raise PermissionError(
                f"{directory} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                "chmod 700 it"
            ) from None
        return
    # mkdir's mode is filtered by the umask; make it exactly 0700.
    os.chmod(directory, 0o700)


def _make_private_file(path: Path) -> None:
    # Create the database ourselves so SQLite never creates it with umask-derived permissions;
    # SQLite then gives its -wal and -shm files the database's mode.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if (os.fstat(fd).st_mode & 0o777) != 0o600:
            os.chmod(path, 0o600)
    finally:
        os.close(fd)


def _open_diskcache(directory: Path, size_limit: int) -> Any:
    import diskcache
    from diskcache.core import DBNAME

    _make_private_dir(directory)
    db = directory / DBNAME
    _make_private_file(db)
    for leftover in (directory / f"{DBNAME}-wal", directory / f"{DBNAME}-shm"):
        if leftover.exists() and (leftover.stat().st_mode & 0o777) != 0o600:
            os.chmod(leftover, 0o600)
    return diskcache.Cache(
        str(directory),
        timeout=_SQLITE_TIMEOUT_S,
        disk=_json_text_disk(),
        size_limit=size_limit,
        # Reads stay lock-free; LRU on disk would make every hit a write transaction.
        eviction_policy="least-recently-stored",
    )


class DiskCache:
    """A persistent cache of JSON values in a private directory, on ``diskcache`` (SQLite).

    Values are stored as JSON text (never pickled), inline in the database. Safe to share
    between threads and between processes using the same directory.

    One worker thread per open cache does every SQLite operation, so a cache used from many
    threads holds one connection (3 file descriptors), not one per thread; it starts on first
    use and ends after a few idle seconds. A key filter loaded at open lets a read of a key that
    is not on disk miss without touching SQLite; entries another process writes after that are
    misses here until the next open (see ``tgispy.cache._keyset``).

    Args:
        directory: where to keep the cache. None: :func:`default_cache_dir`, that is
            ``$TGISPY_CACHEDIR``, else ``~/.cache/tgispy``; when ``TGISPY_CACHEDIR`` turns the disk
            cache off, this cache is off too (:attr:`available` is False). A new directory is
            created 0700; files are 0600.
        size_limit: approximate most bytes on disk; the oldest stored entries go first.

    If the directory cannot be opened, the cache logs one WARNING and turns itself off: ``get``
    misses and ``set`` does nothing. It never raises on a read or write failure.

    Example:
        >>> import tempfile
        >>> with DiskCache(tempfile.mkdtemp() + "/cache") as disk:
        ...     disk.set("k", {"text": "hi"})
        ...     disk.get("k")
        {'text': 'hi'}
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, size_limit: int = 2**30
    ) -> None:
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit < 1:
            raise ConfigError(f"DiskCache(size_limit={size_limit!r}): must be an int of bytes >= 1")
        self._cache: Any = None
        self._write_failure_logged = False
        self._keys = KeyFilter()
        self._worker: DiskWorker | None = None
        if directory is None:
            resolved = default_cache_dir()
            if resolved is None:
                logger.info(
                    "disk cache off: %s=%r; only the memory cache is used",
                    CACHEDIR_ENV,
                    os.environ.get(CACHEDIR_ENV),
                )
                self._directory: Path | None = None
                return
        else:
            resolved = Path(os.fspath(directory)).expanduser()
        self._directory = resolved
        try:
            import diskcache  # noqa: F401
        except ImportError as exc:  # pragma: no cover - diskcache is a core dependency
            raise ImportError(
                "tgispy's disk cache needs diskcache: pip install 'diskcache>=5.6'"
            ) from exc
        try:
            cache = _open_diskcache(resolved, size_limit)
            # The connection diskcache opened in this thread: from now on only the worker's.
            cache.close()
        except Exception as exc:  # any failure to open means "no disk tier", never a failed call
            logger.warning(
                "disk cache off: cannot open cache directory %s (%s: %s). Set %s to a writable "
                "directory, or %s=off to use only the memory cache.",
                resolved,
                type(exc).__name__,
                exc,
                CACHEDIR_ENV,
                CACHEDIR_ENV,
            )
            return
        self._cache = cache
        self._worker = DiskWorker("tgispy-disk-cache", self._write_batch, cache.close)
        self._worker.add_task(KeyLoader(cache.iterkeys, self._keys))

    @property
    def directory(self) -> Path | None:
        """The cache directory (None when the disk cache is turned off by the environment)."""
        return self._directory

    @property
    def available(self) -> bool:
        """Whether the directory opened; when False, ``get`` misses and ``set`` does nothing."""
        return self._cache is not None

    def get(self, key: str) -> Any | None:
        """Return the value stored under ``key``, or None (missing, unreadable or foreign)."""
        text = self._get_text(key)
        return None if text is None else _decode_or_none(key, text)

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-able ``value`` under ``key``; a failed write is logged, not raised.

        Raises:
            ConfigError: ``value`` is an exception, None, or not JSON-serializable.
        """
        self._set_text(key, encode_value(value))

    def clear(self) -> None:
        """Remove every entry (raises if the database cannot be written: nothing silently kept)."""
        worker = self._worker
        if worker is not None:
            worker.flush()
            worker.call(self._clear)

    def _clear(self) -> None:
        # On the worker thread. The filter first: a write queued meanwhile lands after the clear.
        self._keys.reset_empty()
        self._cache.clear(retry=True)

    def close(self) -> None:
        """Write queued entries and close the database connection (it reopens on the next use)."""
        worker = self._worker
        if worker is not None:
            worker.flush()
            worker.call(self._cache.close)

    def __len__(self) -> int:
        worker = self._worker
        if worker is None:
            return 0
        worker.flush()
        return int(worker.call(lambda: len(self._cache)))

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "" if self.available else ", off"
        return f"DiskCache({str(self._directory)!r}{state})"

    def _get_text(self, key: str) -> str | None:
        worker = self._worker
        if worker is None or not self._keys.may_contain(key):
            return None
        text = worker.pending(key)
        if text is not None:
            return text
        return worker.call(lambda: self._read(key))

    def _read(self, key: str) -> str | None:
        # On the worker thread.
        try:
            text = self._cache.get(key)
        except Exception as exc:  # a broken cache is a miss, never a failed call
            logger.debug(
                "disk cache read of %s in %s failed, treated as a miss (%s: %s)",
                key,
                self._directory,
                type(exc).__name__,
                exc,
            )
            return None
        return text if isinstance(text, str) else None

    def _set_text(self, key: str, text: str) -> None:
        """Store one entry and wait until it is written."""
        self._set_later(key, text)
        if self._worker is not None:
            self._worker.flush()

    def _set_later(self, key: str, text: str) -> None:
        """Queue one entry; the worker writes queued entries together, soon (write-behind)."""
        worker = self._worker
        if worker is not None:
            self._keys.add(key)
            worker.write_later(key, text)

    def _flush(self) -> None:
        """Wait until every queued entry has been written."""
        if self._worker is not None:
            self._worker.flush()

    def _write_batch(self, items: Sequence[tuple[str, str]]) -> None:
        # On the worker thread.
        self._set_many(items)

    def _set_many(self, items: Sequence[tuple[str, str]]) -> None:
        """Write entries in one SQLite transaction (the write-behind writer batches them)."""
        cache = self._cache
        if cache is None or not items:
            return
        key = items[0][0]
        try:
            if len(items) == 1:
                cache.set(key, items[0][1])
            else:
                with cache.transact(retry=True):
                    for k, text in items:
                        cache.set(k, text)
        except Exception as exc:  # a failed write loses only a cache entry, never the result
            if not self._write_failure_logged:
                self._write_failure_logged = True
                logger.warning(
                    "disk cache write to %s failed (%s: %s); results are still returned, but "
                    "not persisted. Check the directory or set %s. Further failures are logged "
                    "at DEBUG.",
                    self._directory,
                    type(exc).__name__,
                    exc,
                    CACHEDIR_ENV,
                )
            else:
                logger.debug("disk cache write of %s failed (%s: %s)", key, type(exc).__name__, exc)


def _decode_or_none(key: str, text: str) -> Any | None:
    try:
        return decode_value(text)
    except ValueError as exc:
        logger.debug("disk cache entry %s is not valid JSON, treated as a miss (%s)", key, exc)
        return None
