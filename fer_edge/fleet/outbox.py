"""The device side of the outbox, in the mood log's own SQLite file (its tables: ``moodlog.schema``).

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
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from fer_edge.core.errors import FerEdgeError
from fer_edge.fleet.schema import CANONICAL_EMOTION, DEFAULT_CAMERA, EMOTION_COLUMNS
from fer_edge.moodlog.connection import connect
from fer_edge.moodlog.windows import iso


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
    # Windows the server would refuse (a damaged or tampered log), (id, why): kept in the log,
    # never sent, so one of them cannot block the windows after it.
    set_aside: List[Tuple[int, str]] = field(default_factory=list)


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
        self._conn = connect(self.path, "sync")

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
        """Windows not yet acknowledged by that database. Before the server answered (it is away), the
        database this log was last synced to is taken: what waits is what the next sync will send."""
        if installation is None:
            row = self._conn.execute("SELECT installation FROM fleet_acked ORDER BY updated_at DESC LIMIT 1")
            last = row.fetchone()
            installation = last[0] if last else None
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
        """The oldest ``limit`` windows the server has not acknowledged, ready for COPY; None when none.

        SQLite does the per-window work (emotion columns, UTC times), so Python only adds the keys."""
        after = self.acked(installation)
        # One read transaction: the windows, their counts and their runs from one snapshot.
        with self._conn:
            self._conn.execute("BEGIN")
            labels = set()
            for (names,) in self._conn.execute("SELECT DISTINCT labels FROM runs"):
                labels.update(_labels(names) or [])
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(windows)")}
            windows = self._conn.execute(batch_sql(labels, "camera" in columns), (after, limit)).fetchall()
            if not windows:
                return None
            runs, bad_runs = self._runs({w[1] for w in windows if _is_int(w[1])}, device)
            other = self._other_counts([int(w[0]) for w in windows if w[-2]])
        store = {run_id: run.store for run_id, run in runs.items()}
        dev = device.device_id
        rows, set_aside = [], []
        for w in windows:
            why = window_problem(w) or bad_runs.get(w[1])
            if why is not None:
                set_aside.append((int(w[0]), why))
            else:
                rows.append((dev, w[1], w[0], store[w[1]], *w[2:-2], other.get(w[0]), w[-1]))
        return Batch(rows, runs, int(windows[-1][0]), set_aside)

    def _other_counts(self, window_ids: List[int]) -> Dict[int, str]:
        """Counts of classes outside the emotion columns (a model with other labels), as JSON per window."""
        found: Dict[int, Dict[str, int]] = {}
        for wid in window_ids:
            for emotion, n in self._conn.execute(
                "SELECT emotion, count FROM window_counts WHERE window_id = ?", (wid,)
            ):
                if emotion.lower() in CANONICAL_EMOTION:
                    continue
                found.setdefault(wid, {})[emotion] = int(n)
        return {wid: json.dumps(c) for wid, c in found.items()}

    def _runs(self, run_ids: set[int], device: Device) -> Tuple[Dict[int, RunInfo], Dict[int, str]]:
        """The runs by id, and why a damaged run cannot be sent (its windows are then set aside)."""
        marks = ",".join("?" * len(run_ids))
        found: Dict[int, RunInfo] = {}
        bad: Dict[int, str] = {r: f"its run {r} is not in the log" for r in run_ids}
        for run_id, started_ts, model, dataset, labels, detector, window_s, version, store in self._conn.execute(
            "SELECT r.id, r.started_ts, r.model, r.dataset, r.labels, r.detector, r.window_s, r.fer_edge_version, "
            f"s.store FROM runs r LEFT JOIN fleet_run_store s ON s.run_id = r.id WHERE r.id IN ({marks})",
            sorted(run_ids),
        ):
            label = store or device.store
            if not label:
                raise FerEdgeError(f"run {run_id} has no store label; pass --store LABEL", path=self.path)
            names = _labels(labels)
            if names is None or not _is_time(started_ts) or not (window_s is None or _is_number(window_s)):
                bad[run_id] = f"its run {run_id} is damaged (start time, window length or labels)"
                continue
            bad.pop(run_id)
            found[int(run_id)] = RunInfo(
                int(run_id), label, float(started_ts), str(model or ""), str(dataset or ""), names,
                str(detector or ""), window_s, str(version or ""),
            )  # fmt: skip
        return found, bad


INT_MAX = 2**31 - 1  # the server's integer columns
# Columns of a batch row as ``batch_sql`` selects them, after the window and run ids.
_COUNT_COLUMNS = ("frames", "faces", "valence_positive", "valence_neutral", "valence_negative")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_time(v: object) -> bool:
    return _is_number(v) and 0 <= float(v) <= 253_402_300_799  # type: ignore[arg-type]


def _labels(text: object) -> Optional[List[str]]:
    try:
        names = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


def window_problem(w: Tuple[Any, ...]) -> Optional[str]:
    """Why the server would refuse (or should not get) a window row of ``batch_sql``, or None."""
    if not _is_int(w[1]):
        return f"run id {w[1]!r} is not a number"
    if w[2] is None or w[3] is None:
        return "its start or end time is missing or outside the calendar"
    for name, value in zip(_COUNT_COLUMNS, w[4:9]):
        if not _is_int(value) or not 0 <= value <= INT_MAX:
            return f"{name} {value!r} is not a count"
    if w[9] is not None and not (_is_number(w[9]) and -1.0 <= w[9] <= 1.0):
        return f"satisfaction {w[9]!r} is not in [-1, 1]"
    for name, value in zip(EMOTION_COLUMNS, w[11:-2]):
        if value is not None and (not _is_int(value) or not 0 <= value <= INT_MAX):
            return f"the count of {name} ({value!r}) is not a count"
    return None


def _sql_list(names: List[str]) -> str:
    return ", ".join("'" + n.replace("'", "''") + "'" for n in names)


def batch_sql(labels: Set[str], has_camera: bool = True) -> str:
    """The batch query for logs whose runs use these class names. SQLite pivots the counts: one SUM
    per emotion column, NULL when the run's model lacks the class (the mood log writes a row, maybe 0,
    for every class the model has); then a count of classes outside the columns, and the camera
    (``cam0`` in a log from before cameras were named: ``has_camera`` False)."""
    by_column: Dict[str, List[str]] = {e: [] for e in EMOTION_COLUMNS}
    other: List[str] = []
    for label in sorted(labels):
        column = CANONICAL_EMOTION.get(label.lower())
        (by_column[column] if column else other).append(label)
    sums = [
        f"sum(CASE WHEN c.emotion IN ({_sql_list(names)}) THEN c.count END)" if names else "NULL"
        for names in by_column.values()
    ]
    others = f"count(CASE WHEN c.emotion IN ({_sql_list(other)}) THEN 1 END)" if other else "0"
    return (
        f"SELECT w.id, w.run_id, {_UTC.format('w.start_ts')}, {_UTC.format('w.end_ts')}, w.frames, w.faces, "
        f"w.positive, w.neutral, w.negative, w.satisfaction, CASE w.partial WHEN 0 THEN 'f' ELSE 't' END, "
        f"{', '.join(sums)}, {others}, {'w.camera' if has_camera else repr(DEFAULT_CAMERA)} "
        "FROM windows w LEFT JOIN window_counts c ON c.window_id = w.id "
        "WHERE w.id > ? GROUP BY w.id ORDER BY w.id LIMIT ?"
    )


_UTC = "strftime('%Y-%m-%dT%H:%M:%fZ', {}, 'unixepoch')"
