"""``fer-edge sync``: forward a mood log's waiting windows to the central PostgreSQL, exactly once."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Set

import typer
from typing_extensions import Annotated

from fer_edge.commands import options
from fer_edge.commands.options import number
from fer_edge.core.errors import FerEdgeError


def sync(
    log: Annotated[Optional[Path], typer.Argument(help="Mood log written by 'fer-edge run' (SQLite).")] = None,
    to: Annotated[
        str,
        typer.Option(
            help="Central database: postgresql://USER@HOST/DB[?sslmode=verify-full&sslrootcert=...] or a "
            "libpq string ('service=chain'). Give the password with PGPASSWORD or ~/.pgpass, not here."
        ),
    ] = "",
    store: Annotated[
        Optional[str], typer.Option(help="Store label for runs recorded without one (kept in the log).")
    ] = None,
    batch: Annotated[int, number(help="Windows per server transaction.", min=1, max=100_000)] = 5000,
    retry_for: Annotated[
        float,
        number(help="Keep retrying an unreachable server this many seconds, with backoff.", min=0, max=options.YEAR_S),
    ] = 60.0,
    migrate_only: Annotated[
        bool,
        typer.Option("--migrate-only", help="Create or upgrade the fer_edge schema (an admin's role), send nothing."),
    ] = False,
) -> None:
    """Send the windows the server has not acknowledged, oldest first; safe to repeat or run twice at once."""
    from fer_edge.fleet.conninfo import connect, redact_conninfo
    from fer_edge.fleet.forward import describe_set_aside, sync_log
    from fer_edge.fleet.schema import SCHEMA_VERSION, migrate

    if not to:
        raise FerEdgeError("--to is required: the central database URL (postgresql://USER@HOST/DB)")
    target = redact_conninfo(to)
    if migrate_only:
        conn = connect(to)
        try:
            before = migrate(conn)
        finally:
            conn.close()
        typer.echo(
            f"{target}: schema fer_edge at version {SCHEMA_VERSION}"
            + (f" (was {before})" if before != SCHEMA_VERSION else " (already)")
        )
        return
    if log is None:
        raise FerEdgeError("give the mood log to send (fer-edge sync mood.db --to URL)")

    stop = threading.Event()
    previous: Dict[int, Any] = {}
    told: Set[str] = set()

    def on_retry(message: str, delay: float) -> None:
        if message not in told:  # once per distinct problem; the backoff goes on quietly
            told.add(message)
            typer.echo(f"{message}; retrying with backoff for up to {retry_for:g} s", err=True)

    def on_signal(signum: int, frame: object) -> None:
        # The batch in flight completes (or rolls back on the server); nothing is half-acknowledged.
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    try:
        result = sync_log(
            log,
            to,
            store=store,
            batch_size=batch,
            retry_for=retry_for,
            stop=stop,
            on_retry=on_retry,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if result.set_aside:
        typer.echo(describe_set_aside(result.set_aside, log), err=True)
    rate = result.sent / result.seconds if result.seconds > 0 else 0.0
    typer.echo(
        f"{log} -> {target}: {result.sent} windows sent ({result.new} new to the server, "
        f"{result.sent - result.new} already there) in {result.batches} batches, {result.seconds:.1f} s "
        f"({rate:,.0f} windows/s); {result.waiting} waiting"
    )
    if result.stopped:
        typer.echo(f"stopped by a signal; {result.waiting} windows wait for the next sync", err=True)
        raise typer.Exit(1)
