"""``fer-edge report URL --health``: every device of the chain with its store and its state.

A device's state is the first that applies, in this order (``problems`` lists all that apply):

- ``silent``: its last health record is older than ``silent_after`` (on the server's clock, so a
  device with a wrong clock is judged right);
- ``camera down``: fewer cameras up than it has;
- ``behind on sync``: more than ``BEHIND_WINDOWS`` windows wait on the device, or its last sync failed;
- ``other model``: its model (by SHA-256) is not the one most of the chain runs;
- ``ok``.

A device that synced windows but never recorded its health (a fer-edge from before health records)
is ``unknown``.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError
from fer_edge.fleet.schema import DEVICE_HEALTH_VERSION, SCHEMA, current_version

SILENT_AFTER_S = 15 * 60.0
# A device syncs every few seconds; this many windows waiting (10 minutes of 60-s windows) means it
# cannot keep up or cannot reach the server.
BEHIND_WINDOWS = 10
STATES = ("silent", "camera down", "behind on sync", "other model", "ok", "unknown")


@dataclass(frozen=True)
class DeviceState:
    device_id: str
    store: Optional[str]
    state: str
    problems: List[str] = field(default_factory=list)
    last_seen: Optional[str] = None  # ISO 8601, UTC
    silent_s: Optional[float] = None  # seconds since the last record (server clock)
    fer_edge_version: Optional[str] = None
    model: Optional[str] = None
    model_sha256: Optional[str] = None
    cameras_up: Optional[int] = None
    cameras_total: Optional[int] = None
    fps: Optional[float] = None
    windows_waiting: Optional[int] = None
    windows_held: Optional[int] = None
    last_error: Optional[str] = None


_QUERY = f"""
SELECT coalesce(h.device_id, d.device_id)::text, coalesce(h.store, d.first_store), h.last_seen,
       extract(epoch FROM now() - h.last_seen)::float8, h.fer_edge_version, h.model, h.model_sha256,
       h.cameras_up, h.cameras_total, h.fps, h.windows_waiting, h.windows_held, h.last_error
FROM {SCHEMA}.devices d FULL OUTER JOIN {SCHEMA}.device_health h ON h.device_id = d.device_id
ORDER BY 2 NULLS LAST, 1
"""


def query_health(
    conn: Any, silent_after_s: float = SILENT_AFTER_S, stores: Sequence[str] = ()
) -> List[DeviceState]:
    """Every device (or those of ``stores``) with its state, ordered by store."""
    if silent_after_s <= 0:
        raise FerEdgeError(f"--silent-after must be more than 0 minutes, got {silent_after_s / 60:g}")
    version = current_version(conn)
    if version == 0:
        raise FerEdgeError(f"the database has no '{SCHEMA}' schema yet: nothing was synced to it")
    if version < DEVICE_HEALTH_VERSION:
        raise FerEdgeError(
            f"the database's schema '{SCHEMA}' is version {version}, from before device health; it is "
            "upgraded at the next sync of a device (or by fer-edge sync --migrate-only)"
        )
    with conn.transaction():
        rows = conn.execute(_QUERY).fetchall()
    if stores:
        rows = [r for r in rows if r[1] in set(stores)]
    models = Counter(r[6] for r in rows if r[6])
    # The chain's model: the one most devices run (ties: the first in hash order, so it is stable).
    chain_model = min(models, key=lambda m: (-models[m], m)) if models else None
    return [_state(r, silent_after_s, chain_model) for r in rows]


def _state(r: tuple, silent_after_s: float, chain_model: Optional[str]) -> DeviceState:
    (device_id, store, last_seen, age, version, model, sha, up, total, fps, waiting, held, error) = r
    problems: List[str] = []
    if last_seen is None:
        state = "unknown"
    else:
        if age > silent_after_s:
            problems.append("silent")
        if up is not None and total is not None and up < total:
            problems.append("camera down")
        if (waiting is not None and waiting > BEHIND_WINDOWS) or error:
            problems.append("behind on sync")
        if sha and chain_model and sha != chain_model:
            problems.append("other model")
        state = problems[0] if problems else "ok"
    return DeviceState(
        device_id, store, state, problems,
        last_seen=last_seen.isoformat(timespec="seconds") if last_seen is not None else None,
        silent_s=None if age is None else round(float(age), 1),
        fer_edge_version=version, model=model, model_sha256=sha, cameras_up=up, cameras_total=total,
        fps=None if fps is None else float(fps), windows_waiting=waiting, windows_held=held, last_error=error,
    )  # fmt: skip


CSV_COLUMNS = [
    "store", "device_id", "state", "problems", "last_seen", "silent_s", "fer_edge_version", "model",
    "model_sha256", "cameras_up", "cameras_total", "fps", "windows_waiting", "windows_held", "last_error",
]  # fmt: skip


def write_csv(states: Sequence[DeviceState], target: str | Path) -> Path:
    """One line per device; ``problems`` joined by ``;``, empty cells for what is not known."""
    with atomic_path(target) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for s in states:
            row = asdict(s)
            row["problems"] = ";".join(s.problems)
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return Path(target)


def write_json(states: Sequence[DeviceState], silent_after_s: float, target: str | Path) -> Path:
    doc = {
        "silent_after_s": silent_after_s,
        "states": {name: sum(s.state == name for s in states) for name in STATES},
        "devices": [asdict(s) for s in states],
    }
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return Path(target)
