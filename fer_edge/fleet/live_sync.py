"""``run --sync URL --store LABEL``: the pieces ``fer-edge run`` wires in.

Configuration mistakes (no psycopg, a URL that is not one, no store label) stop ``run`` before the
camera opens; anything the server does later (down, wrong password, foreign schema) only prints a
line from the background worker while the camera keeps logging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from fer_edge.core.errors import FerEdgeError
from fer_edge.fleet.conninfo import import_psycopg, is_conninfo, redact_conninfo
from fer_edge.fleet.forward import Forwarder
from fer_edge.fleet.outbox import validate_store


def check_options(log: Path, sync: Optional[str], store: Optional[str]) -> None:
    """Fail fast, before the camera opens, on what the user must fix."""
    if store is not None:
        validate_store(store)
    if sync is None:
        return
    import_psycopg()
    if not is_conninfo(sync):
        raise FerEdgeError(f"--sync {redact_conninfo(sync)!r} is not a PostgreSQL URL (postgresql://USER@HOST/DB)")
    if store is None and _device_store(log) is None:
        raise FerEdgeError("--sync needs --store LABEL (the store this camera is in), e.g. --store berlin-01")


def _device_store(log: Path) -> Optional[str]:
    """The store label an earlier run recorded in this log, if any (read-only; no log, no label)."""
    import sqlite3

    from fer_edge.moodlog.connection import connect

    if not log.is_file():
        return None
    try:
        conn = connect(log, "read")
        try:
            row = conn.execute("SELECT store FROM fleet_device").fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, FerEdgeError):
        return None
    return row[0] if row else None


def attach(
    log: Path,
    run_id: Optional[int],
    sync: Optional[str],
    store: Optional[str],
    echo: Callable[[str], None],
) -> Optional[Forwarder]:
    """Record the run's store label; with ``sync``, start the background forwarder."""
    from fer_edge.fleet.outbox import Outbox

    if sync is None and store is None:
        return None
    import sqlite3

    device_id = "not yet recorded"
    try:
        with Outbox(log) as outbox:
            device = outbox.device(store)
            device_id = device.device_id
            if store is not None and run_id is not None:
                outbox.label_run(run_id, store)
    except (sqlite3.Error, FerEdgeError) as exc:
        # A full disk or a lock held elsewhere: the camera goes on; the run then carries the device's label.
        echo(f"sync: cannot record the store label in {log} now ({exc}); the device's label is used")
    if sync is None:
        return None
    echo(f"sync: windows go to {redact_conninfo(sync)} in the background (device {device_id})")
    return Forwarder(log, sync, echo=echo, store=store).start()


def waiting(forwarder: Optional[Forwarder]) -> Optional[int]:
    """Windows waiting for the server, for the status line; None without --sync or before the first count."""
    if forwarder is None:
        return None
    count = forwarder.waiting()
    return count if count >= 0 else None


def detach(forwarder: Optional[Forwarder], echo: Callable[[str], None], timeout: float = 10.0) -> None:
    """A last pass (bounded by ``timeout``); then say what still waits for the next sync."""
    if forwarder is None:
        return
    waiting = forwarder.close(timeout)
    if waiting > 0:
        echo(f"sync: {waiting} windows wait in the log for the next sync (fer-edge sync LOG --to URL)")
    elif waiting == 0:
        echo("sync: every window is on the server")
