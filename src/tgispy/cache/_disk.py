"""The persistent tier: JSON text in a private SQLite database, written by one worker thread.

Safety properties, each tested:

* values are JSON text stored inline in SQLite: nothing is pickled or unpickled, no value files
  are written, and an entry that is not JSON text (say, bytes someone else wrote) is refused;
* the directory is created 0700 and the database (with its ``-wal``/``-shm`` files, which SQLite
  creates with the database's mode) 0600, whatever the umask;
* a broken cache never breaks a call: an unreadable entry is a miss (logged at DEBUG), a failed
  write is logged (WARNING once, then DEBUG), and a directory that cannot be opened turns the tier
  off with one WARNING naming the directory and ``TGISPY_CACHEDIR``.

The format: one table ``entries(key TEXT PRIMARY KEY, value TEXT)`` in ``tgispy-cache.sqlite3``
(WAL mode); ``INSERT OR REPLACE`` gives a rewritten entry a new rowid, so rowid order is store
order and eviction drops the lowest rowids. (Up to 0.x the tier was a ``diskcache`` directory,
``cache.db``; such a file is left alone and no longer read.)
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tgispy.cache._keys import decode_value, encode_value
from tgispy.cache._keyset import KeyFilter, KeyLoader
from tgispy.cache._worker import DiskWorker
from tgispy.errors import ConfigError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["CACHEDIR_ENV", "DiskCache", "default_cache_dir"]

logger = logging.getLogger(__name__)

#: Environment variable naming the disk cache directory; one of ``_OFF_VALUES`` turns it off.
CACHEDIR_ENV = "TGISPY_CACHEDIR"
_OFF_VALUES = frozenset({"", "off", "0", "false", "no", "none"})

#: SQLite busy timeout: a cache that waits long on a lock is worse than a miss.
_SQLITE_TIMEOUT_S = 5.0
#: the database file in the cache directory
DB_NAME = "tgispy-cache.sqlite3"
_SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)"


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


#: rows per INSERT statement (2 parameters each, within SQLite's oldest limit of 999)
_ROWS_PER_INSERT = 256


@functools.lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    return "INSERT OR REPLACE INTO entries (key, value) VALUES " + ",".join(["(?, ?)"] * rows)


def _connect(db: Path) -> sqlite3.Connection:
    import sqlite3

    # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE for a batch of writes).
    con = sqlite3.connect(db, timeout=_SQLITE_TIMEOUT_S, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, fast
    except BaseException:
        con.close()
        raise
    return con


def _open_database(directory: Path) -> Path:
    """Create (or check) the private directory and database; returns the database's path."""
    _make_private_dir(directory)
    db = directory / DB_NAME
    _make_private_file(db)
    for leftover in (directory / f"{DB_NAME}-wal", directory / f"{DB_NAME}-shm"):
        if leftover.exists() and (leftover.stat().st_mode & 0o777) != 0o600:
            os.chmod(leftover, 0o600)
    con = _connect(db)
    try:
        con.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        con.execute(_SCHEMA)
        con.execute("SELECT count(*) FROM entries").fetchone()
    finally:
        con.close()
    return db


class DiskCache:
    """A persistent cache of JSON values in a private directory (one SQLite database).

    Values are stored as JSON text (never pickled), inline in the database. Safe to share
    between threads and between processes using the same directory.

    One worker thread per open cache does every SQLite operation, so a cache used from many
    threads holds one connection (3 file descriptors), not one per thread; it starts on first
    use and ends after a few idle seconds. Writes queued by :class:`~tgispy.cache.LMCache`'s
    write-behind go to disk together, in one transaction. A key filter loaded at open lets a
    read of a key that is not on disk miss without touching SQLite; entries another process
    writes after that are misses here until the next open (see ``tgispy.cache._keyset``).

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
        self._size_limit = size_limit
        self._db: Path | None = None
        self._con: sqlite3.Connection | None = None  # the worker thread's
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
            self._db = _open_database(resolved)
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
        self._worker = DiskWorker("tgispy-disk-cache", self._write_batch, self._disconnect)
        self._worker.add_task(KeyLoader(self._iter_keys, self._keys))

    @property
    def directory(self) -> Path | None:
        """The cache directory (None when the disk cache is turned off by the environment)."""
        return self._directory

    @property
    def available(self) -> bool:
        """Whether the directory opened; when False, ``get`` misses and ``set`` does nothing."""
        return self._worker is not None

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

    def close(self) -> None:
        """Write queued entries and close the database connection (it reopens on the next use)."""
        worker = self._worker
        if worker is not None:
            worker.flush()
            worker.call(self._disconnect)

    def __len__(self) -> int:
        worker = self._worker
        if worker is None:
            return 0
        worker.flush()
        return worker.call(self._count)

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "" if self.available else ", off"
        return f"DiskCache({str(self._directory)!r}{state})"

    # ---- called from any thread ---------------------------------------------------------------
    def _get_text(self, key: str) -> str | None:
        worker = self._worker
        if worker is None or not self._keys.may_contain(key):
            return None
        text = worker.pending(key)
        if text is not None:
            return text
        return worker.call(lambda: self._read(key))

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

    # ---- on the worker thread -----------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        con = self._con
        if con is None:
            assert self._db is not None
            con = self._con = _connect(self._db)
        return con

    def _disconnect(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def _read(self, key: str) -> str | None:
        try:
            row = (
                self._connection()
                .execute("SELECT value FROM entries WHERE key = ?", (key,))
                .fetchone()
            )
        except Exception as exc:  # a broken cache is a miss, never a failed call
            logger.debug(
                "disk cache read of %s in %s failed, treated as a miss (%s: %s)",
                key,
                self._directory,
                type(exc).__name__,
                exc,
            )
            return None
        if row is None:
            return None
        if type(row[0]) is not str:
            logger.debug(
                "disk cache entry %s is a %s, not JSON text: treated as a miss",
                key,
                type(row[0]).__name__,
            )
            return None
        return str(row[0])

    def _count(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM entries").fetchone()[0])

    def _clear(self) -> None:
        # The filter first: a write queued meanwhile lands after the clear.
        self._keys.reset_empty()
        self._connection().execute("DELETE FROM entries")

    def _iter_keys(self) -> Iterator[object]:
        # In chunks, holding no cursor between them (writes and reads go on in between).
        last = 0
        while True:
            rows = (
                self._connection()
                .execute(
                    "SELECT rowid, key FROM entries WHERE rowid > ? ORDER BY rowid LIMIT 1000",
                    (last,),
                )
                .fetchall()
            )
            if not rows:
                return
            yield from (key for _, key in rows)
            last = rows[-1][0]

    def _write_batch(self, items: Sequence[tuple[str, str]]) -> None:
        """Write entries in one SQLite transaction, then evict the oldest if over the limit."""
        if not items:
            return
        try:
            con = self._connection()
            con.execute("BEGIN IMMEDIATE")
            try:
                # Few statements of many rows, not executemany: sqlite3 lets go of the GIL for
                # every statement it steps, and each hand-back costs the serving thread a switch.
                for start in range(0, len(items), _ROWS_PER_INSERT):
                    chunk = items[start : start + _ROWS_PER_INSERT]
                    con.execute(_insert_sql(len(chunk)), [x for row in chunk for x in row])
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            self._evict(con)
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
                logger.debug(
                    "disk cache write of %d entries failed (%s: %s)",
                    len(items),
                    type(exc).__name__,
                    exc,
                )

    def _evict(self, con: sqlite3.Connection) -> None:
        # Pages in use (freed pages are reused, so the file stays near the limit).
        while True:
            pages = con.execute("PRAGMA page_count").fetchone()[0]
            free = con.execute("PRAGMA freelist_count").fetchone()[0]
            size = con.execute("PRAGMA page_size").fetchone()[0]
            if (pages - free) * size <= self._size_limit:
                return
            count = con.execute("SELECT count(*) FROM entries").fetchone()[0]
            if count == 0:
                return
            con.execute(
                "DELETE FROM entries WHERE rowid IN "
                "(SELECT rowid FROM entries ORDER BY rowid LIMIT ?)",
                (max(1, count // 10),),
            )


def _decode_or_none(key: str, text: str) -> Any | None:
    try:
        return decode_value(text)
    except ValueError as exc:
        logger.debug("disk cache entry %s is not valid JSON, treated as a miss (%s)", key, exc)
        return None
