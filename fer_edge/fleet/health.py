"""The device's health in the central database: one row per device in ``fer_edge.device_health``,
replaced at each sync of ``run --sync`` (at most once a minute), so ``report URL --health`` can say
which store went silent, which camera is down, which device is behind or runs another model.

The figures come from ``run`` as a plain dict (``HEALTH_FIELDS``; the camera side builds it from
the loop's metrics objects): the fleet layer knows nothing of cameras. Recording is best effort:
the windows are what must arrive; a health row that cannot be written (a server that is away, a
role without the grant, a schema not yet upgraded) is said once and tried again next time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from fer_edge.fleet.schema import SCHEMA, ensure_schema

# What run reports about itself, in the columns of fer_edge.device_health.
HEALTH_FIELDS = (
    "fer_edge_version", "model", "model_sha256", "cameras_up", "cameras_total", "fps", "windows_held",
)  # fmt: skip
RECORD_EVERY_S = 60.0


_COLUMNS = ("device_id", "store", "device_time", *HEALTH_FIELDS, "windows_waiting", "last_error")
_UPSERT = (
    f"INSERT INTO {SCHEMA}.device_health ({', '.join(_COLUMNS)}, last_seen) "
    f"SELECT {', '.join(['%s'] * len(_COLUMNS))}, now() "
    # A copied log (another device's id) must not overwrite that device's health.
    f"WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.devices WHERE device_id = %s AND fingerprint <> %s) "
    "ON CONFLICT (device_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*_COLUMNS[1:], "last_seen"))
)


@dataclass(frozen=True)
class DeviceHealth:
    device_id: str
    fingerprint: str
    store: Optional[str]
    figures: Dict[str, Any]  # HEALTH_FIELDS (missing ones are NULL)
    windows_waiting: Optional[int]
    last_error: str = ""
    device_time: float = 0.0


def record_health(conn: Any, health: DeviceHealth) -> bool:
    """Insert or replace the device's row (one transaction); False when a device with this id but
    another fingerprint exists (nothing written)."""
    from datetime import datetime, timezone

    values = [
        health.device_id, health.store,
        datetime.fromtimestamp(health.device_time or time.time(), timezone.utc),
        *(health.figures.get(k) for k in HEALTH_FIELDS), health.windows_waiting, health.last_error[:500] or None,
    ]  # fmt: skip
    with conn.transaction():
        cur = conn.execute(_UPSERT, (*values, health.device_id, health.fingerprint))
        return bool(cur.rowcount)


class HealthReporter:
    """The forwarder's side: ``figures`` is set by ``run`` (a callable returning the HEALTH_FIELDS
    dict); :meth:`maybe_record` is called after each pass of the forwarder and records when due."""

    def __init__(self, log: Path, conninfo: str, echo: Callable[[str], None],
                 every_s: float = RECORD_EVERY_S) -> None:  # fmt: skip
        self.log, self.conninfo, self.echo, self.every_s = log, conninfo, echo, every_s
        self.figures: Callable[[], Optional[Dict[str, Any]]] = lambda: None
        self._last = float("-inf")
        self._told = ""
        self._device: Any = None  # read from the log once: no write transaction on it every minute

    def maybe_record(self, outbox: Any, waiting: int, last_error: str, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self.every_s:
            return
        figures = self.figures()
        if figures is None:
            return
        self._last = time.monotonic()  # a failed try waits a full period too: no hammering
        from fer_edge.fleet.conninfo import CentralUnavailable, connect, describe_error, import_psycopg

        psycopg = import_psycopg()
        try:
            device = self._device = self._device or outbox.device()
            health = DeviceHealth(device.device_id, device.fingerprint, device.store, figures,
                                  waiting if waiting >= 0 else None, last_error, time.time())  # fmt: skip
            conn = connect(self.conninfo)
            try:
                ensure_schema(conn)  # a fresh or older database, as the sync itself would
                record_health(conn, health)
            finally:
                conn.close()
        except CentralUnavailable:
            pass  # the server is away: the forwarder says so already
        except psycopg.Error as exc:
            self._tell(f"sync: the device's health is not recorded ({describe_error(exc, self.conninfo)})")
        except Exception as exc:  # the camera must outlive anything in here; the windows matter more
            self._tell(f"sync: the device's health is not recorded ({exc})")
        else:
            self._told = ""

    def _tell(self, message: str) -> None:
        if message != self._told:
            self.echo(message)
            self._told = message
