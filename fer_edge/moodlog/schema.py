"""The mood log's tables, all of them: the camera's windows and tracks, and the fleet's device and
outbox tables that live in the same SQLite file. Also the checks that refuse a log from a newer
fer-edge (never written to, its version marker never rewritten down) and a foreign SQLite file.

The on-disk schema is a contract (docs/architecture.md): other tools read these tables.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fer_edge.core.errors import FerEdgeError

SCHEMA_VERSION = "3"  # 2: windows.outage_s, one window per (run_id, start_ts); 3: windows.camera
DEFAULT_CAMERA = "cam0"  # the one camera of a run with a bare --source, and of every log before version 3
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, started_ts REAL NOT NULL, ended_at TEXT, ended_ts REAL,
    source TEXT, model TEXT, dataset TEXT, labels TEXT NOT NULL, detector TEXT, crop_rule TEXT,
    window_s REAL, fer_edge_version TEXT
);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),
    start TEXT NOT NULL, end TEXT NOT NULL, start_ts REAL NOT NULL, end_ts REAL NOT NULL,
    frames INTEGER NOT NULL, faces INTEGER NOT NULL,
    positive INTEGER NOT NULL, neutral INTEGER NOT NULL, negative INTEGER NOT NULL,
    satisfaction REAL, partial INTEGER NOT NULL DEFAULT 0, outage_s REAL NOT NULL DEFAULT 0,
    camera TEXT NOT NULL DEFAULT 'cam0'
);
CREATE INDEX IF NOT EXISTS windows_start ON windows(start_ts);
CREATE TABLE IF NOT EXISTS window_counts (
    window_id INTEGER NOT NULL REFERENCES windows(id), emotion TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (window_id, emotion)
);
CREATE TABLE IF NOT EXISTS tracks (
    run_id INTEGER NOT NULL REFERENCES runs(id), track_id INTEGER NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    first_seen_ts REAL NOT NULL, last_seen_ts REAL NOT NULL,
    frames INTEGER NOT NULL, emotion TEXT NOT NULL, distribution TEXT NOT NULL,
    PRIMARY KEY (run_id, track_id)
);
"""

# The device side of the chain of stores (``fleet.outbox``):
# - ``fleet_device``: the device id (a UUID made once) and a secret whose hash the server keeps;
# - ``fleet_run_store``: the store label each run was recorded under (``run --store``);
# - ``fleet_acked``: per central database (its installation id), the highest window id it committed.
FLEET_TABLES = """
CREATE TABLE IF NOT EXISTS fleet_device (
    one INTEGER PRIMARY KEY CHECK (one = 1), device_id TEXT NOT NULL, secret TEXT NOT NULL,
    store TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_run_store (run_id INTEGER PRIMARY KEY, store TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_acked (
    installation TEXT PRIMARY KEY, window_id INTEGER NOT NULL, updated_at TEXT NOT NULL
);
"""

CAMERA_TABLES = frozenset({"meta", "runs", "windows", "window_counts", "tracks"})
FLEET_TABLE_NAMES = frozenset({"fleet_device", "fleet_run_store", "fleet_acked"})
# What the reader needs of ``windows`` (``outage_s`` came with version 2 and may be missing).
WINDOW_COLUMNS = ("id", "run_id", "start", "end", "start_ts", "end_ts", "frames", "faces",
                  "positive", "neutral", "negative", "satisfaction", "partial")  # fmt: skip


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}


def _version(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return None if row is None else str(row[0])


def _newer(version: str) -> bool:
    try:
        return int(version) > int(SCHEMA_VERSION)
    except ValueError:
        return True  # not a number we ever wrote: a later format, or damage; never written to


def check_ours(conn: sqlite3.Connection, path: Path, *, writing: bool) -> set[str]:
    """The log's tables, after refusing a foreign SQLite file and (when ``writing``) a log from a newer
    fer-edge; an empty database is ours to create."""
    tables = _tables(conn)
    names = {t for t in tables if not t.startswith("sqlite_")}
    if not names:
        return tables
    if not {"windows", "window_counts"} <= names:
        shown = ", ".join(sorted(names)[:5])
        raise FerEdgeError(f"not a fer-edge mood log (its tables: {shown}); choose another log", path=path)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(windows)")}
    missing = [c for c in WINDOW_COLUMNS if c not in columns]
    if missing:
        raise FerEdgeError(f"not a fer-edge mood log (its windows table has no {', '.join(missing[:3])})", path=path)
    version = _version(conn) if "meta" in names else None
    if writing and version is not None and _newer(version):
        raise FerEdgeError(
            f"written by a newer fer-edge (mood-log schema version {version}, this fer-edge knows "
            f"{SCHEMA_VERSION}); upgrade fer-edge or give another log. Nothing was written",
            path=path,
        )
    return tables


def create_or_upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Make a new log, or bring an older one to SCHEMA_VERSION (forward only, adding only)."""
    tables = check_ours(conn, path, writing=True)
    if CAMERA_TABLES | {"windows_run_start"} <= tables and _version(conn) == SCHEMA_VERSION:
        return
    with conn:
        conn.executescript("BEGIN;" + SCHEMA)
        # Again inside the write transaction: another process may have upgraded it meanwhile.
        version = _version(conn)
        if version is not None and _newer(version):
            raise FerEdgeError(f"written by a newer fer-edge (mood-log schema version {version})", path=path)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(windows)")}
        if "outage_s" not in columns:  # a version-1 log: windows with a camera throughout
            conn.execute("ALTER TABLE windows ADD COLUMN outage_s REAL NOT NULL DEFAULT 0")
        if "camera" not in columns:  # before version 3: one camera per process, named as run names it now
            conn.execute(f"ALTER TABLE windows ADD COLUMN camera TEXT NOT NULL DEFAULT '{DEFAULT_CAMERA}'")
        # The natural key of a window: a retried write can never insert it twice.
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS windows_run_start ON windows(run_id, start_ts)")
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (SCHEMA_VERSION,),
        )
