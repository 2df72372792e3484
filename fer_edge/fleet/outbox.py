"""The device side of the outbox, in the mood log's own SQLite file (tables of this module only).

- ``fleet_device``: the device id (a UUID made once) and a secret whose hash the server keeps, so
  a log that claims another device's id is refused.
- ``fleet_run_store``: the store label each run was recorded under (``run --store``).
- ``fleet_acked``: per central database (its installation id, never its URL), the highest window
  id the server has committed. SQLite serialises writers and assigns window ids at insert, so the
  windows above that mark are exactly those still waiting; the mark only moves up, and only after
  the server's commit, so a kill at any moment can cause a resend (which the server ignores) but
  never a loss.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from fer_edge.camera.moodlog import iso
from fer_edge.camera.report import open_log
from fer_edge.errors import FerEdgeError
from fer_edge.fleet.schema import CANONICAL_EMOTION, EMOTION_COLUMNS

TABLES = """
CREATE TABLE IF NOT EXISTS fleet_device (
    one INTEGER PRIMARY KEY CHECK (one = 1), device_id TEXT NOT NULL, secret TEXT NOT NULL,
    store TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_run_store (run_id INTEGER PRIMARY KEY, store TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_acked (
    installation TEXT PRIMARY KEY, window_id INTEGER NOT NULL, updated_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Device:
    device_id: str
    secret: str
    store: Optional[str]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    store: str
    started_ts: float
    model: str
    dataset: str
    labels: List[str]
    detector: str
    window_s: Optional[float]
    fer_edge_version: str

    @property
    def started_at(self) -> datetime:
        return utc(self.started_ts)


@dataclass(frozen=True)
class Batch:
    """Windows (oldest first) as rows in WINDOW_COLUMNS order, and the runs they belong to."""

    rows: List[Tuple[Any, ...]]
    runs: Dict[int, RunInfo]
    last_window_id: int


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def validate_store(label: str) -> str:
    label = label.strip()
    if not label or len(label) > 200 or any(ord(c) < 32 for c in label):
        raise FerEdgeError(f"bad --store {label!r}: give a short label such as berlin-01")
    return label


class Outbox:
    """One connection to a mood log for the forwarder (its own; the camera keeps its own)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        open_log(self.path).close()  # a missing file or one that is not a mood log: one line
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(TABLES)
            self._conn.commit()
        except sqlite3.Error as exc:
            raise FerEdgeError(f"cannot open the mood log for syncing ({exc})", path=self.path) from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def device(self, store: Optional[str] = None) -> Device:
        """The device identity, made on first use; ``store`` (if given) becomes the device's label."""
        with self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO fleet_device (one, device_id, secret, created_at) VALUES (1, ?, ?, ?)",
                (str(uuid.uuid4()), secrets.token_hex(32), iso(time.time())),
            )
            if store is not None:
                self._conn.execute("UPDATE fleet_device SET store = ? WHERE one = 1", (validate_store(store),))
        device_id, secret, label = self._conn.execute(
            "SELECT device_id, secret, store FROM fleet_device WHERE one = 1"
        ).fetchone()
        return Device(device_id, secret, label)

    def label_run(self, run_id: int, store: str) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO fleet_run_store (run_id, store) VALUES (?, ?)", (run_id, validate_store(store))
            )

    def acked(self, installation: str) -> int:
        row = self._conn.execute("SELECT window_id FROM fleet_acked WHERE installation = ?", (installation,)).fetchone()
        return int(row[0]) if row else 0

    def waiting(self, installation: Optional[str]) -> int:
        """Windows not yet acknowledged by that database (all of them when it is not known yet)."""
        after = self.acked(installation) if installation else 0
        return int(self._conn.execute("SELECT count(*) FROM windows WHERE id > ?", (after,)).fetchone()[0])

    def mark_acked(self, installation: str, window_id: int) -> None:
        """Record that the server committed every window up to ``window_id``; the mark never moves back
        (two syncs at once may finish out of order)."""
        with self._conn:
            self._conn.execute(
                "INSERT INTO fleet_acked (installation, window_id, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(installation) DO UPDATE SET window_id = max(window_id, excluded.window_id), "
                "updated_at = excluded.updated_at",
                (installation, window_id, iso(time.time())),
            )

    def next_batch(self, installation: str, device: Device, limit: int) -> Optional[Batch]:
        """The oldest ``limit`` windows the server has not acknowledged, ready for COPY; None when none."""
        after = self.acked(installation)
        # One read transaction: the windows, their counts and their runs from one snapshot.
        with self._conn:
            self._conn.execute("BEGIN")
            windows = self._conn.execute(
                "SELECT id, run_id, start_ts, end_ts, frames, faces, positive, neutral, negative, satisfaction, "
                "partial FROM windows WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
            if not windows:
                return None
            last = int(windows[-1][0])
            counts: Dict[int, Dict[str, int]] = {int(w[0]): {} for w in windows}
            for wid, emotion, n in self._conn.execute(
                "SELECT window_id, emotion, count FROM window_counts WHERE window_id > ? AND window_id <= ?",
                (after, last),
            ):
                counts[int(wid)][emotion] = int(n)
            runs = self._runs({int(w[1]) for w in windows}, device)
        rows = []
        for wid, run_id, start_ts, end_ts, frames, faces, pos, neu, neg, sat, partial in windows:
            run = runs[int(run_id)]
            emotion_counts = _emotion_columns(run.labels, counts[int(wid)])
            rows.append(
                (device.device_id, int(run_id), int(wid), run.store, utc(start_ts), utc(end_ts), frames, faces,
                 pos, neu, neg, sat, bool(partial), *emotion_counts, json.dumps(counts[int(wid)]))
            )  # fmt: skip
        return Batch(rows, runs, last)

    def _runs(self, run_ids: set[int], device: Device) -> Dict[int, RunInfo]:
        marks = ",".join("?" * len(run_ids))
        found: Dict[int, RunInfo] = {}
        for run_id, started_ts, model, dataset, labels, detector, window_s, version, store in self._conn.execute(
            "SELECT r.id, r.started_ts, r.model, r.dataset, r.labels, r.detector, r.window_s, r.fer_edge_version, "
            f"s.store FROM runs r LEFT JOIN fleet_run_store s ON s.run_id = r.id WHERE r.id IN ({marks})",
            sorted(run_ids),
        ):
            label = store or device.store
            if not label:
                raise FerEdgeError(f"run {run_id} has no store label; pass --store LABEL", path=self.path)
            found[int(run_id)] = RunInfo(
                int(run_id), label, float(started_ts), model or "", dataset or "", list(json.loads(labels)),
                detector or "", window_s, version or "",
            )  # fmt: skip
        return found


def _emotion_columns(labels: List[str], counts: Dict[str, int]) -> List[Optional[int]]:
    """The per-emotion columns: a class the run's model has -> its count, one it lacks -> None."""
    values: Dict[str, Optional[int]] = dict.fromkeys(EMOTION_COLUMNS)
    for label in labels:
        column = CANONICAL_EMOTION.get(label.lower())
        if column is not None:
            values[column] = (values[column] or 0) + counts.get(label, 0)
    return [values[e] for e in EMOTION_COLUMNS]
