"""The printed side of ``fer-edge report URL``: a table per group, the chain's totals, CSV and PNG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from fer_edge.errors import FerEdgeError
from fer_edge.fleet.central_report import query_groups, total, write_csv, write_plot
from fer_edge.fleet.conninfo import connect, describe_error, import_psycopg, redact_conninfo


def _sat(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def report_central(
    conninfo: str,
    by: str,
    stores: Sequence[str],
    since: Optional[float],
    until: Optional[float],
    plot: Optional[Path],
    csv: Optional[Path],
    cameras: Sequence[str] = (),
) -> None:
    from rich.console import Console
    from rich.table import Table

    psycopg = import_psycopg()
    t0 = time.perf_counter()
    conn = connect(conninfo)
    try:
        rows = query_groups(conn, by, stores, since, until, cameras)
    except psycopg.Error as exc:  # e.g. a role without SELECT on the mood tables
        raise FerEdgeError(f"the report query failed: {describe_error(exc, conninfo)}") from None
    finally:
        conn.close()
    seconds = time.perf_counter() - t0
    console = Console()
    target = redact_conninfo(conninfo)
    if not rows:
        console.print(
            f"{target}: no windows"
            + (" for the chosen stores, cameras or period" if stores or cameras or since or until else "")
        )
    else:
        table = Table(title=f"Chain of stores, by {by}: {target}")
        table.add_column(by)
        if by not in ("store", "store,camera"):
            table.add_column("stores", justify="right")
        for name in ("windows", "faces", "satisfaction", "top emotion"):
            table.add_column(name, justify="left" if name == "top emotion" else "right")
        for r in rows:
            top = max(r.counts, key=lambda e: r.counts[e]) if r.faces else "-"
            cells = [r.key] + ([str(r.stores)] if by not in ("store", "store,camera") else [])
            table.add_row(*cells, str(r.windows), str(r.faces), _sat(r.satisfaction), top)
        console.print(table)
        all_ = total(rows)
        pol = f"positive {all_.positive} / neutral {all_.neutral} / negative {all_.negative}"
        console.print(
            f"all: {all_.windows} windows, {all_.faces} faces ({pol}); satisfaction index "
            f"{_sat(all_.satisfaction)}   ((positive - negative) / faces); query {seconds:.2f} s",
            soft_wrap=True,
        )
    if csv is not None:
        console.print(f"wrote {write_csv(rows, by, csv)}")
    if plot is not None:
        console.print(f"wrote {write_plot(rows, by, plot)}")
