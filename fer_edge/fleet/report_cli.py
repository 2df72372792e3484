"""The printed side of ``fer-edge report URL``: a table per group, the chain's totals, CSV and PNG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from fer_edge.core.errors import FerEdgeError
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


def report_health(
    conninfo: str, silent_after_s: float, stores: Sequence[str], csv: Optional[Path], json_out: Optional[Path]
) -> None:
    """``report URL --health``: a line per device (store, state, last seen, cameras, fps, waiting, model)."""
    from rich.console import Console
    from rich.table import Table

    from fer_edge.fleet.health_report import STATES, query_health, write_csv, write_json

    psycopg = import_psycopg()
    conn = connect(conninfo)
    try:
        states = query_health(conn, silent_after_s, stores)
    except psycopg.Error as exc:  # e.g. a role without SELECT on device_health
        raise FerEdgeError(f"the health query failed: {describe_error(exc, conninfo)}") from None
    finally:
        conn.close()
    console = Console()
    target = redact_conninfo(conninfo)
    if not states:
        console.print(f"{target}: no devices" + (" in the chosen stores" if stores else ""))
    else:
        table = Table(title=f"Devices of the chain: {target}")
        for name in ("store", "device", "state", "last seen", "cameras up", "fps", "waiting", "model", "version"):
            table.add_column(name, justify="right" if name in ("cameras up", "fps", "waiting") else "left")
        for s in states:
            ago = "-" if s.silent_s is None else _ago(s.silent_s)
            cams = "-" if s.cameras_total is None else f"{s.cameras_up}/{s.cameras_total}"
            state = ", ".join(s.problems) if s.problems else s.state
            table.add_row(s.store or "-", s.device_id[:8], state, ago, cams, "-" if s.fps is None else f"{s.fps:.1f}",
                          "-" if s.windows_waiting is None else str(s.windows_waiting), s.model or "-",
                          s.fer_edge_version or "-")  # fmt: skip
        console.print(table)
        counts = [f"{sum(s.state == name for s in states)} {name}" for name in STATES]
        console.print(f"{len(states)} devices: " + ", ".join(c for c in counts if not c.startswith("0 ")) +
                      f"   (silent: no sync for more than {silent_after_s / 60:g} min)", soft_wrap=True)  # fmt: skip
    if csv is not None:
        console.print(f"wrote {write_csv(states, csv)}")
    if json_out is not None:
        console.print(f"wrote {write_json(states, silent_after_s, json_out)}")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def check_health_options(
    target: str, health: bool, json_out: Optional[Path], by: Optional[str], since: Optional[str],
    until: Optional[str], plot: Optional[Path],
) -> None:  # fmt: skip
    """``--health`` is for a central database, and its own kind of report."""
    from fer_edge.fleet.conninfo import is_conninfo

    if not health:
        raise FerEdgeError("--json is for --health (the devices of a central database)")
    if not is_conninfo(target):
        raise FerEdgeError("--health is for a central database (postgresql://...), not a mood log")
    given = [name for name, value in (("--by", by), ("--since", since), ("--until", until), ("--plot", plot))
             if value is not None]  # fmt: skip
    if given:
        raise FerEdgeError(f"--health lists devices now; {', '.join(given)} do not apply to it")
