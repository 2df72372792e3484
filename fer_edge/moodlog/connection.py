"""The one way to open a mood log: for the camera's writes, for the forwarder, or read-only.

Every mode opens the file by absolute path (never a URI built by hand): a name with ``#``, ``?``
or ``%`` (or one starting with ``file:``) is the file it says. One busy timeout for all; the camera
passes a shorter one so a lock held elsewhere costs its loop little (the windows wait in memory).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from fer_edge.core.errors import FerEdgeError
from fer_edge.moodlog.schema import FLEET_TABLES, SQLITE_MAGIC, check_ours, create_or_upgrade

BUSY_TIMEOUT_S = 10.0
MODES = ("write", "sync", "read")
TRANSIENT = ("locked", "busy", "full", "i/o error", "no space", "disk quota")


def is_transient(exc: BaseException) -> bool:
    """A write failure worth retrying: a lock held elsewhere, a full disk, an I/O error."""
    return isinstance(exc, (sqlite3.OperationalError, OSError)) and any(word in str(exc).lower() for word in TRANSIENT)


def sqlite_uri(path: str | Path, **params: str) -> str:
    """A ``file:`` URI for ``path``, quoted, so ``#``, ``?`` and ``%`` in a name stay part of it."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quote(os.path.abspath(path))}" + (f"?{query}" if query else "")


def _refuse_non_sqlite(path: Path) -> None:
    # SQLite would silently turn a tiny foreign file into a database: refuse anything not SQLite.
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise FerEdgeError("exists and is not a SQLite database; choose another --log", path=path)


def connect(path: str | Path, mode: str = "read", timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open a mood log.

    - ``write`` (the camera): created if missing, WAL, ``synchronous=FULL``, schema made or upgraded.
      A transient failure (full disk, lock held elsewhere) is raised as it is, so the caller can hold
      its windows and retry; anything else is a one-line FerEdgeError.
    - ``sync`` (the forwarder): an existing log; adds the fleet tables; usable from another thread.
    - ``read`` (report): never writes, also from read-only media.
    A foreign SQLite file, and for ``write``/``sync`` a log from a newer fer-edge, is refused in one line.
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} not in {MODES}")
    path = Path(path)
    if mode == "read":
        return _connect_read(path, timeout_s)
    if mode == "sync":
        _connect_read(path, timeout_s).close()  # a missing file or one that is not a mood log: one line
        return _connect_sync(path, timeout_s)
    _refuse_non_sqlite(path)
    conn = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(os.path.abspath(path), timeout=timeout_s)
        check_ours(conn, path, writing=True)  # before anything is written, even the journal mode
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed window survives power loss too, not only a killed process.
        conn.execute("PRAGMA synchronous=FULL")
        create_or_upgrade(conn, path)
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        if is_transient(exc):
            raise
        raise FerEdgeError(f"cannot open the mood log for writing ({exc})", path=path) from None
    except FerEdgeError:
        if conn is not None:
            conn.close()
        raise
    return conn


def _connect_sync(path: Path, timeout_s: float) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(os.path.abspath(path), timeout=timeout_s, check_same_thread=False)
    except sqlite3.Error as exc:
        raise FerEdgeError(f"cannot open the mood log for syncing ({exc})", path=path) from None
    try:
        check_ours(conn, path, writing=True)
        # NORMAL, not FULL: an acknowledgement lost to a power cut only means a resend, which the
        # server ignores; the camera's own connection keeps FULL for the windows themselves.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(FLEET_TABLES)
        conn.commit()
    except sqlite3.Error as exc:
        conn.close()
        raise FerEdgeError(f"cannot open the mood log for syncing ({exc})", path=path) from None
    except FerEdgeError:
        conn.close()
        raise
    return conn


def _connect_read(path: Path, timeout_s: float) -> sqlite3.Connection:
    if path.is_dir():
        raise FerEdgeError("is a folder, not a mood log", path=path)
    if not path.is_file():
        raise FerEdgeError("mood log not found", path=path)
    try:
        conn = _connect_read_only(path, timeout_s)
    except sqlite3.Error as exc:
        raise FerEdgeError(f"not a readable mood log ({exc})", path=path) from None
    try:
        tables = check_ours(conn, path, writing=False)
    except sqlite3.Error as exc:
        conn.close()
        raise FerEdgeError(f"not a readable mood log ({exc})", path=path) from None
    except FerEdgeError:
        conn.close()
        raise
    if not {"windows", "window_counts"} <= tables:  # an empty database: no mood log (yet)
        conn.close()
        raise FerEdgeError("not a fer-edge mood log (no windows table)", path=path)
    return conn


def _connect_read_only(path: Path, timeout_s: float) -> sqlite3.Connection:
    """Read-only, also from read-only media: a WAL log there cannot get its ``-shm`` file, so it is
    opened ``immutable`` (nothing else can be writing it), unless its ``-wal`` file holds windows
    that are not yet in the database file, which ``immutable`` would silently skip."""
    try:
        conn = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True, timeout=timeout_s)
        conn.execute("SELECT name FROM sqlite_master").fetchall()
        return conn
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
    wal = Path(f"{path}-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise FerEdgeError(
            f"on read-only media with a non-empty {wal.name} beside it (windows not yet folded into the "
            f"database); copy {path.name} and {wal.name} together to a writable folder and report there",
            path=path,
        )
    return sqlite3.connect(sqlite_uri(path, immutable="1"), uri=True, timeout=timeout_s)
