"""The central schema ``fer_edge`` (docs/fleet.md): tables, forward migrations, and the checks that
refuse a schema fer-edge did not create or one from a newer fer-edge.

Migrations only add: each is a list of statements applied in one transaction under an advisory
lock (two devices migrating at once take turns), recorded in ``fer_edge.schema_version``. No
migration ever drops a table or a column: a CRM's queries keep working across upgrades.
"""

from __future__ import annotations

import uuid
from typing import Any, List, Tuple

from fer_edge.core.errors import FerEdgeError

APPLICATION = "fer-edge"
SCHEMA = "fer_edge"

# One column per emotion of the union of both label sets, named as in FERPlus; FER2013's names map
# onto them. A run's model lacks a class -> NULL there (contempt for FER2013), not 0, so "not
# measured" stays distinct from "nobody showed it". A model with classes outside these (none of
# the shipped ones) keeps those counts in ``other_counts`` (jsonb), NULL otherwise.
EMOTION_COLUMNS: Tuple[str, ...] = (
    "anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
)  # fmt: skip
CANONICAL_EMOTION = {"angry": "anger", "happy": "happiness", "sad": "sadness", **{e: e for e in EMOTION_COLUMNS}}

WINDOW_COLUMNS: Tuple[str, ...] = (
    "device_id", "run_id", "window_id", "store", "start_at", "end_at", "frames", "faces",
    "valence_positive", "valence_neutral", "valence_negative", "satisfaction", "partial", *EMOTION_COLUMNS,
    "other_counts", "camera",
)  # fmt: skip
DEFAULT_CAMERA = "cam0"  # a window synced before windows had cameras: the one camera of its run

# Central schema 2 is the windows' camera column (several cameras per device); 3 is device health.
DEVICE_HEALTH_VERSION = 3

MIGRATIONS: List[Tuple[int, List[str]]] = [
    (
        1,
        [
            f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
            f"COMMENT ON SCHEMA {SCHEMA} IS 'fer-edge: mood windows of store cameras (see docs/fleet.md)'",
            f"""CREATE TABLE {SCHEMA}.schema_version (
                version integer PRIMARY KEY, application text NOT NULL, fer_edge_version text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""",
            f"""CREATE TABLE {SCHEMA}.installation (
                id uuid PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())""",
            f"""CREATE TABLE {SCHEMA}.devices (
                device_id uuid PRIMARY KEY, fingerprint text NOT NULL, first_store text,
                first_seen timestamptz NOT NULL DEFAULT now())""",
            f"""CREATE TABLE {SCHEMA}.runs (
                device_id uuid NOT NULL REFERENCES {SCHEMA}.devices, run_id integer NOT NULL,
                store text NOT NULL, started_at timestamptz NOT NULL, model text, dataset text,
                labels jsonb NOT NULL, detector text, window_s double precision, fer_edge_version text,
                PRIMARY KEY (device_id, run_id))""",
            # No foreign key to runs: a batch inserts its runs first in the same transaction, and a
            # per-row FK check would nearly double the cost of every insert (measured, docs/fleet.md).
            f"""CREATE TABLE {SCHEMA}.windows (
                device_id uuid NOT NULL, run_id integer NOT NULL, window_id bigint NOT NULL,
                store text NOT NULL, start_at timestamptz NOT NULL, end_at timestamptz NOT NULL,
                frames integer NOT NULL, faces integer NOT NULL, valence_positive integer NOT NULL,
                valence_neutral integer NOT NULL, valence_negative integer NOT NULL,
                satisfaction double precision,
                partial boolean NOT NULL,
                {", ".join(f"{e} integer" for e in EMOTION_COLUMNS)},
                other_counts jsonb,
                received_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (device_id, run_id, window_id))""",
            f"CREATE INDEX windows_store_start ON {SCHEMA}.windows (store, start_at)",
            # BRIN: windows arrive roughly in time order, and a BRIN index costs next to nothing to
            # keep up at insert time while still narrowing a chain-wide time range.
            f"CREATE INDEX windows_start ON {SCHEMA}.windows USING brin (start_at)",
        ],
    ),
    (
        2,
        [
            # Several cameras per device: each window is one camera's. Windows synced before were the
            # one camera of their run, which a single-camera run now names cam0.
            f"ALTER TABLE {SCHEMA}.windows ADD COLUMN camera text NOT NULL DEFAULT '{DEFAULT_CAMERA}'",
            f"COMMENT ON COLUMN {SCHEMA}.windows.camera IS 'the camera of the window (fer-edge run --source "
            "NAME=URL or --cameras); cam0 for a single camera'",
        ],
    ),
    (
        DEVICE_HEALTH_VERSION,
        [
            # Each device's state at its last sync (fleet/health.py), one row per device replaced in
            # place: 500 stores x a sync a minute would otherwise add 720,000 rows a day nobody reads.
            # No foreign key to devices: a device reports its health before its first window.
            f"""CREATE TABLE {SCHEMA}.device_health (
                device_id uuid PRIMARY KEY, store text, last_seen timestamptz NOT NULL DEFAULT now(),
                device_time timestamptz, fer_edge_version text, model text, model_sha256 text,
                cameras_up integer, cameras_total integer, fps double precision, windows_waiting integer,
                windows_held integer, last_error text)""",
            f"COMMENT ON TABLE {SCHEMA}.device_health IS 'fer-edge: each device''s state at its last sync "
            "(last_seen on the server''s clock); see docs/fleet.md, Operations'",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('fer_edge.migrate'))"


_INSPECT = """
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %(s)s),
       ARRAY(SELECT tablename::text FROM pg_tables WHERE schemaname = %(s)s ORDER BY 1),
       ARRAY(SELECT attname::text FROM pg_attribute
             WHERE attrelid = to_regclass(%(s)s || '.schema_version') AND attnum > 0 AND NOT attisdropped)
"""


def current_version(conn: Any) -> int:
    """0 for no schema (or an empty one an admin made for us); raises for a foreign or newer schema."""
    with conn.transaction():
        exists, tables, columns = conn.execute(_INSPECT, {"s": SCHEMA}).fetchone()
        if not exists or not tables:
            return 0
        foreign = FerEdgeError(
            f"the database has a schema '{SCHEMA}' that fer-edge did not create (tables: "
            f"{', '.join(tables[:5])}); use another database or rename that schema"
        )
        if not {"version", "application"} <= set(columns):
            raise foreign
        apps = conn.execute(
            f"SELECT application, max(version) FROM {SCHEMA}.schema_version GROUP BY application"
        ).fetchall()
    if any(app != APPLICATION for app, _ in apps):
        raise foreign
    version = max((int(v) for _, v in apps), default=0)
    if version > SCHEMA_VERSION:
        raise FerEdgeError(
            f"the database's schema '{SCHEMA}' is version {version}, newer than this fer-edge knows "
            f"({SCHEMA_VERSION}); upgrade fer-edge on this device"
        )
    return version


def migrate(conn: Any) -> int:
    """Bring the schema to SCHEMA_VERSION (forward only); returns the version found before."""
    from fer_edge import __version__

    psycopg = __import__("psycopg")
    try:
        with conn.transaction():
            conn.execute(_LOCK)
            before = current_version(conn)  # again, under the lock: another device may have migrated
            for version, statements in MIGRATIONS:
                if version <= before:
                    continue
                for sql in statements:
                    conn.execute(sql)
                conn.execute(
                    f"INSERT INTO {SCHEMA}.schema_version (version, application, fer_edge_version) VALUES (%s, %s, %s)",
                    (version, APPLICATION, __version__),
                )
            conn.execute(
                f"INSERT INTO {SCHEMA}.installation (id) SELECT %s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.installation)",
                (uuid.uuid4(),),
            )
    except psycopg.errors.InsufficientPrivilege:
        raise FerEdgeError(
            f"the schema '{SCHEMA}' needs creating or upgrading to version {SCHEMA_VERSION} and this role "
            "may not do it; an admin runs: fer-edge sync --migrate-only --to URL (docs/fleet.md)"
        ) from None
    return before


def ensure_schema(conn: Any, allow_migrate: bool = True) -> str:
    """Check (and if needed and allowed, migrate) the schema; returns the installation id.

    A least-privilege role only reads here: the migration is tried only when the schema is behind.
    """
    if current_version(conn) < SCHEMA_VERSION:
        if not allow_migrate:
            raise FerEdgeError(f"the database has no up-to-date '{SCHEMA}' schema; run fer-edge sync --migrate-only")
        migrate(conn)
    with conn.transaction():
        row = conn.execute(f"SELECT id FROM {SCHEMA}.installation").fetchone()
    if row is None:
        raise FerEdgeError(f"the schema '{SCHEMA}' has no installation id; run fer-edge sync --migrate-only")
    return str(row[0])
