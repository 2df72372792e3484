"""Forwarding windows: one batch = one server transaction, then the local acknowledgement.

The server's insert is idempotent (``ON CONFLICT DO NOTHING`` on the natural key), and the device
marks a batch as sent only after the server's commit returned. A kill, a dropped connection or a
second sync at the same time therefore causes at most a resend that the server ignores.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, List, Optional, Set, Tuple

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.retry import Backoff
from fer_edge.fleet.conninfo import CentralUnavailable, connect, describe_error, import_psycopg, is_transient
from fer_edge.fleet.health import HealthReporter
from fer_edge.fleet.outbox import Batch, Device, Outbox
from fer_edge.fleet.schema import SCHEMA, WINDOW_COLUMNS, ensure_schema

BATCH = 5000
_COLS = ", ".join(WINDOW_COLUMNS)


class DeviceConflict(FerEdgeError):
    """The log's device id belongs to another device on the server (a copied log)."""


class CentralSession:
    """One connection to the central database: schema checked once, the device and runs once each."""

    def __init__(self, conninfo: str, device: Device, allow_migrate: bool = True, method: str = "copy") -> None:
        self.conninfo, self.device, self.method = conninfo, device, method
        self.conn = connect(conninfo)
        try:
            self.installation = ensure_schema(self.conn, allow_migrate)
        except BaseException:
            self.conn.close()
            raise
        self._device_known = False
        self._temp_ready = self._temp_pending = False
        self._runs_known: Set[int] = set()

    def close(self) -> None:
        self.conn.close()

    def send(self, batch: Batch) -> int:
        """Insert a batch in one transaction; returns how many windows were new to the server."""
        self._temp_pending = False
        with self.conn.transaction():
            if not self._device_known:
                self._register_device(batch)
            fresh = sorted(set(batch.runs) - self._runs_known)
            if fresh:
                self._register_runs(batch, fresh)
            new = self._copy(batch) if self.method == "copy" else self._executemany(batch)
        self._device_known = True
        # The temporary table exists once the transaction that created it has committed.
        self._temp_ready = self._temp_ready or self._temp_pending
        self._runs_known.update(batch.runs)
        return new

    def _register_device(self, batch: Batch) -> None:
        d = self.device
        first_store = next(iter(batch.runs.values())).store
        self.conn.execute(
            f"INSERT INTO {SCHEMA}.devices (device_id, fingerprint, first_store) VALUES (%s, %s, %s) "
            "ON CONFLICT (device_id) DO NOTHING",
            (d.device_id, d.fingerprint, first_store),
        )
        row = self.conn.execute(f"SELECT fingerprint FROM {SCHEMA}.devices WHERE device_id = %s", (d.device_id,))
        if row.fetchone()[0] != d.fingerprint:
            raise DeviceConflict(
                f"device id {d.device_id} is already used by another device in this database (was this mood "
                "log copied from another device?); sync each device's own log"
            )

    def _register_runs(self, batch: Batch, run_ids: list[int]) -> None:
        import json

        runs = [batch.runs[r] for r in run_ids]
        with self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {SCHEMA}.runs (device_id, run_id, store, started_at, model, dataset, labels, detector, "
                "window_s, fer_edge_version) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s) "
                "ON CONFLICT (device_id, run_id) DO NOTHING",
                [
                    (self.device.device_id, r.run_id, r.store, r.started_at, r.model, r.dataset,
                     json.dumps(r.labels), r.detector, r.window_s, r.fer_edge_version)
                    for r in runs
                ],
            )  # fmt: skip
            cur.execute(
                f"SELECT run_id, extract(epoch FROM started_at) FROM {SCHEMA}.runs "
                "WHERE device_id = %s AND run_id = ANY(%s)",
                (self.device.device_id, run_ids),
            )
            on_server = {int(r): float(ts) for r, ts in cur.fetchall()}
        for r in runs:
            # Two logs with one device id diverge at their first own run: same run id, other start.
            if abs(on_server[r.run_id] - r.started_ts) > 1e-3:
                raise DeviceConflict(
                    f"device id {self.device.device_id} run {r.run_id} is already in this database with another "
                    "start time: the mood log was copied from another device; sync each device's own log"
                )

    def _copy(self, batch: Batch) -> int:
        """COPY straight into the table inside a savepoint: all-or-nothing, so a batch with any window
        the server already has (a resend, a second sync at once) fails whole and takes the idempotent
        path below. The usual batch, all new, skips the temporary table (a third less server time)."""
        psycopg = import_psycopg()
        cur = self.conn.cursor()
        try:
            with self.conn.transaction(), cur.copy(f"COPY {SCHEMA}.windows ({_COLS}) FROM STDIN") as copy:
                for row in batch.rows:
                    copy.write_row(row)
            return len(batch.rows)
        except psycopg.errors.UniqueViolation:
            pass
        if not self._temp_ready:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS fe_incoming (LIKE {SCHEMA}.windows INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
            self._temp_pending = True
        with cur.copy(f"COPY fe_incoming ({_COLS}) FROM STDIN") as copy:
            for row in batch.rows:
                copy.write_row(row)
        # Key order: two syncs of one log lock the same keys in the same order, so they never deadlock.
        cur.execute(
            f"INSERT INTO {SCHEMA}.windows SELECT * FROM fe_incoming ORDER BY device_id, run_id, window_id "
            "ON CONFLICT DO NOTHING"
        )
        return int(cur.rowcount)

    def _executemany(self, batch: Batch) -> int:
        marks = ", ".join(["%s"] * len(WINDOW_COLUMNS))
        with self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {SCHEMA}.windows ({_COLS}) VALUES ({marks}) ON CONFLICT DO NOTHING", batch.rows
            )
            return int(cur.rowcount)


@dataclass
class SyncResult:
    sent: int = 0  # windows in committed batches
    new: int = 0  # of which the server did not have yet
    batches: int = 0
    waiting: int = 0
    seconds: float = 0.0
    stopped: bool = False
    installation: Optional[str] = None
    # Windows not sent because the server would refuse them, (id, why); they stay in the log.
    set_aside: List[Tuple[int, str]] = field(default_factory=list)


def send_around_refusals(session: CentralSession, batch: Batch, conninfo: str) -> Tuple[int, List[Tuple[int, str]]]:
    """Send a batch; when the server refuses its data (a damaged window the checks before sending did
    not foresee), send it in halves until each refused window stands alone, and set those aside.
    Returns the windows new to the server and the refused ones, (id, the server's reason)."""
    if not batch.rows:
        return 0, []
    psycopg = import_psycopg()
    try:
        return session.send(batch), []
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        if len(batch.rows) == 1:
            return 0, [(int(batch.rows[0][2]), f"the server refused it: {describe_error(exc, conninfo)}")]
    mid = len(batch.rows) // 2
    new_a, refused_a = send_around_refusals(session, replace(batch, rows=batch.rows[:mid]), conninfo)
    new_b, refused_b = send_around_refusals(session, replace(batch, rows=batch.rows[mid:]), conninfo)
    return new_a + new_b, refused_a + refused_b


def describe_set_aside(set_aside: List[Tuple[int, str]], log: str | Path, shown: int = 5) -> str:
    """One line naming the windows set aside, by id, with what is wrong with the first few."""
    parts = [f"{wid} ({why})" for wid, why in set_aside[:shown]]
    more = f" and {len(set_aside) - shown} more" if len(set_aside) > shown else ""
    return (
        f"{len(set_aside)} damaged windows of {Path(log).name} set aside, not sent (they stay in the log): "
        + "; ".join(parts)
        + more
    )


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, CentralUnavailable):
        return exc.transient
    return is_transient(exc)


def sync_log(
    log: str | Path,
    conninfo: str,
    *,
    store: Optional[str] = None,
    batch_size: int = BATCH,
    allow_migrate: bool = True,
    retry_for: float = 60.0,
    stop: Optional[threading.Event] = None,
    on_batch: Callable[[SyncResult], None] = lambda r: None,
    on_retry: Callable[[str, float], None] = lambda msg, delay: None,
    method: str = "copy",
) -> SyncResult:
    """Send every waiting window, oldest first, until none waits, ``stop`` is set, or the server has
    been unreachable for ``retry_for`` seconds (then a FerEdgeError). Permanent errors raise at once."""
    psycopg = import_psycopg()
    stop = stop or threading.Event()
    result, t0 = SyncResult(), time.perf_counter()
    backoff = Backoff(first=0.5, cap=30.0, jitter=0.2)
    session: Optional[CentralSession] = None
    installation: Optional[str] = None
    with Outbox(log) as outbox:
        device = outbox.device(store)
        failing_since: Optional[float] = None
        try:
            while not stop.is_set():
                try:
                    if session is None:
                        session = CentralSession(conninfo, device, allow_migrate, method)
                        installation = session.installation
                    batch = outbox.next_batch(session.installation, device, batch_size)
                    if batch is None:
                        break
                    new, refused = send_around_refusals(session, batch, conninfo)
                    outbox.mark_acked(session.installation, batch.last_window_id)
                    result.new += new
                    result.sent += len(batch.rows) - len(refused)
                    result.set_aside += sorted(batch.set_aside + refused)
                    result.batches += 1
                    result.installation = session.installation
                    result.waiting = outbox.waiting(session.installation)
                    failing_since = None
                    backoff.reset()
                    on_batch(result)
                except (psycopg.Error, CentralUnavailable) as exc:
                    if session is not None:
                        session.close()
                        session = None
                    if not _transient(exc):
                        if isinstance(exc, FerEdgeError):
                            raise
                        raise FerEdgeError(f"the server refused the windows: {describe_error(exc, conninfo)}") from None
                    now = time.monotonic()
                    failing_since = failing_since or now
                    message = str(exc) if isinstance(exc, FerEdgeError) else describe_error(exc, conninfo)
                    if now - failing_since >= retry_for:
                        raise FerEdgeError(
                            f"{message} (gave up after {retry_for:g} s; "
                            f"{outbox.waiting(installation)} windows wait in {Path(log).name})"
                        ) from None
                    on_retry(message, backoff.delay)
                    backoff.wait(stop)
        except sqlite3.Error as exc:  # e.g. the log locked for longer than the busy timeout
            raise FerEdgeError(f"cannot read the mood log for syncing ({exc})", path=log) from None
        finally:
            if session is not None:
                session.close()
            result.stopped = stop.is_set()
            result.installation = installation
            result.waiting = outbox.waiting(installation)
            result.seconds = time.perf_counter() - t0
    return result


class Forwarder:
    """The background worker of ``run --sync``: polls the log, sends what waits, backs off while the
    server is away. The camera thread never waits on it; ``waiting()`` is for the status line."""

    def __init__(
        self,
        log: str | Path,
        conninfo: str,
        echo: Callable[[str], None] = print,
        poll_s: float = 2.0,
        batch_size: int = 1000,
        max_backoff_s: float = 60.0,
        store: Optional[str] = None,
    ) -> None:
        import_psycopg()  # a missing extra is a one-line error before the camera starts
        self.log, self.conninfo, self.echo = Path(log), conninfo, echo
        self.poll_s, self.batch_size = poll_s, batch_size
        self.store = store  # recorded as the device's label once the log can be opened
        self._stop = threading.Event()
        self._waiting = -1
        self._installation: Optional[str] = None
        self._backoff = Backoff(first=0.5, cap=max_backoff_s, jitter=0.2)
        self._last_error = ""
        self._last_echo = 0.0
        self._told_set_aside = 0
        self.errors = 0  # failed passes since the start (run --metrics: fer_edge_sync_errors_total)
        # The device's health, recorded centrally after a pass when due; run sets health.figures.
        self.health = HealthReporter(self.log, conninfo, echo)
        self._thread = threading.Thread(target=self._loop, name="fer-edge-sync", daemon=True)

    def waiting(self) -> int:
        """Windows not yet acknowledged by the server (-1 until first counted)."""
        return self._waiting

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> int:
        """One last pass over what waits (unless the server is away), then stop, within ``timeout``;
        returns the windows still waiting."""
        self._stop.set()
        self._thread.join(timeout)
        # Counted again now: the camera's last windows came after the worker's last count.
        try:
            with Outbox(self.log) as outbox:
                self._waiting = outbox.waiting(self._installation)
        except (sqlite3.Error, FerEdgeError):
            pass  # the log cannot be read now: the last count stands
        return self._waiting

    def _loop(self) -> None:
        outbox: Optional[Outbox] = None
        while outbox is None:
            try:
                outbox = Outbox(self.log)
            except Exception as exc:
                # The camera may not have made its log yet (a full disk at the start): try again later.
                if str(exc) != self._last_error:
                    self.echo(f"sync: waiting for the mood log ({exc})")
                self._last_error = str(exc)
                if self._backoff.wait(self._stop):
                    return
        self._last_error = ""
        self._backoff.reset()
        with outbox:
            if self.store is not None:
                # The log may not have existed when the run started (a full disk): label the device now.
                with contextlib.suppress(sqlite3.Error):
                    outbox.device(self.store)
            stopping = False
            while True:
                delay = self._pass(outbox)
                self.health.maybe_record(outbox, self._waiting, self._last_error)
                if stopping:
                    return
                stopping = self._stop.wait(delay)
                if stopping and self._last_error:
                    return  # no last pass against a server that is away: the windows wait in the log

    def _pass(self, outbox: Outbox) -> float:
        """Send whatever waits; returns the seconds until the next pass."""
        self._waiting = outbox.waiting(self._installation)
        if self._waiting == 0:
            return self.poll_s
        self._told_set_aside = 0  # each pass has its own result
        try:
            result = sync_log(self.log, self.conninfo, batch_size=self.batch_size, retry_for=0.0,
                              on_batch=self._note)  # fmt: skip
        except FerEdgeError as exc:
            self.errors += 1
            self._waiting = outbox.waiting(self._installation)
            now = time.monotonic()
            # Once per distinct problem, then a reminder with the count at most once a minute.
            if str(exc) != self._last_error:
                self.echo(f"sync: {exc}; {self._waiting} windows wait, retrying with backoff")
                self._last_echo = now
            elif now - self._last_echo >= 60.0:
                self.echo(f"sync: still failing; {self._waiting} windows wait")
                self._last_echo = now
            self._last_error = str(exc)
            return self._backoff.next()
        except Exception as exc:  # the camera must outlive any bug in here
            self.errors += 1
            self.echo(f"sync: unexpected {type(exc).__name__}: {describe_error(exc, self.conninfo)}")
            self._last_error = repr(exc)
            return self._backoff.next()
        self._note(result)
        if self._last_error:
            self.echo(f"sync: the server is back; {result.waiting} windows wait")
        self._last_error = ""
        self._backoff.reset()
        return self.poll_s

    def _note(self, result: SyncResult) -> None:
        self._installation = result.installation or self._installation
        self._waiting = result.waiting
        if len(result.set_aside) > self._told_set_aside:  # said once per window, as they are met
            self.echo(f"sync: {describe_set_aside(result.set_aside[self._told_set_aside :], self.log)}")
        self._told_set_aside = len(result.set_aside)
