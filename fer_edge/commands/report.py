"""``fer-edge report``: the mood log as a summary table, a CSV for CRM import and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from typing_extensions import Annotated

from fer_edge.commands import options
from fer_edge.commands.options import number
from fer_edge.core.errors import FerEdgeError


def report(
    log: Annotated[
        str,
        typer.Argument(
            help="Mood log written by 'fer-edge run' (SQLite), or a central database "
            "(postgresql://USER@HOST/DB) that 'fer-edge sync' fills."
        ),
    ],
    since: Annotated[
        Optional[str],
        typer.Option(
            help="Only windows starting at/after this date or time (YYYY-MM-DD or ISO date-time; local time)."
        ),
    ] = None,
    until: Annotated[Optional[str], typer.Option(help="Only windows starting before this date or time.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG chart of mood over time here.")] = None,
    csv: Annotated[Optional[Path], typer.Option(help="Write one CSV line per window here (CRM import).")] = None,
    by: Annotated[
        Optional[str],
        typer.Option(
            help="One line per camera (a mood log); per store, camera, store,camera, hour or day (a central "
            "database; default store)."
        ),
    ] = None,
    store: Annotated[
        Optional[List[str]], typer.Option(help="Central database only: only this store (repeatable).")
    ] = None,
    camera: Annotated[
        Optional[List[str]], typer.Option(help="Only this camera's windows (repeatable; cam0: a single camera).")
    ] = None,
    health: Annotated[
        bool, typer.Option(help="Central database only: every device with its state (ok, silent, camera down, ...).")
    ] = False,
    silent_after: Annotated[
        float,
        number(help="With --health: minutes without a sync after which a device is silent.", above=0,
               max=options.YEAR_S / 60),
    ] = 15.0,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="With --health: write the devices as JSON here.")
    ] = None,
) -> None:
    """Summarise the mood log: faces per emotion, satisfaction index; optional chart and CSV.
    Given a PostgreSQL URL, the same across the chain of stores."""
    from rich.console import Console

    from fer_edge.core.paths import guard_outputs
    from fer_edge.core.tables import FitTable
    from fer_edge.fleet.conninfo import is_conninfo
    from fer_edge.moodlog.reader import describe_skipped, parse_when, read_windows
    from fer_edge.moodlog.summary import summarize, write_csv, write_plot
    from fer_edge.moodlog.windows import polarity

    guard_outputs({"LOG": log}, {"--csv": csv, "--plot": plot, "--json": json_out})
    if health or json_out is not None:
        from fer_edge.fleet.report_cli import check_health_options, report_health

        check_health_options(log, health, json_out, by, since, until, plot)
        report_health(log, silent_after * 60.0, store or [], csv, json_out)
        return
    lo = parse_when(since) if since else None
    hi = parse_when(until) if until else None
    if is_conninfo(log):
        from fer_edge.fleet.report_cli import report_central

        report_central(log, (by or "store").replace(" ", ""), store or [], lo, hi, plot, csv, cameras=camera or [])
        return
    if store:
        raise FerEdgeError("--store is for a central database (postgresql://...), not a mood log")
    if by not in (None, "camera"):
        raise FerEdgeError(f"--by for a mood log is camera (store, hour, day: a central database), got {by!r}")
    log_path = Path(log)
    rows, skipped = read_windows(log_path, lo, hi)
    if skipped:  # a damaged or tampered log: the rest is still reported
        typer.echo(describe_skipped(skipped, log_path), err=True)
    if camera:
        rows = [r for r in rows if r.camera in camera]
    summary = summarize(rows)
    console = Console()
    if not rows:
        chosen = " for the chosen cameras or period" if camera or lo or hi else ""
        console.print(f"{log_path}: no windows{chosen}")
    else:
        if by == "camera":
            console.print(camera_table(rows))
        table = FitTable(f"Mood log {log_path.name}: {summary.first_start} .. {summary.last_end}")
        table.add_column("emotion", justify="left")
        table.add_column("valence", justify="left")
        table.add_column("faces")
        table.add_column("share")
        for emotion, n in summary.counts.items():
            share = f"{n / summary.faces:.1%}" if summary.faces else "-"
            table.add_row(emotion, polarity(emotion), str(n), share)
        table.add_section()
        table.add_row("all", "", str(summary.faces), "100.0%" if summary.faces else "-")
        console.print(table)
        sat = "n/a (no faces)" if summary.satisfaction is None else f"{summary.satisfaction:+.3f}"
        pol = summary.polarity
        console.print(f"windows: {summary.windows}   faces: {summary.faces}", soft_wrap=True)
        console.print(
            f"valence: positive {pol['positive']} / neutral {pol['neutral']} / negative {pol['negative']}",
            soft_wrap=True,
        )
        console.print(f"satisfaction index: {sat}   ((positive - negative) / faces)", soft_wrap=True)
    if csv is not None:
        console.print(f"wrote {write_csv(rows, csv)}")
    if plot is not None:
        console.print(f"wrote {write_plot(rows, plot)}")


def camera_table(rows: List[Any]) -> Any:
    """One line per camera: windows, faces, satisfaction index, top emotion, seconds without a camera."""
    from fer_edge.core.tables import FitTable
    from fer_edge.moodlog.summary import summarize

    table = FitTable("By camera")
    for name in ("camera", "windows", "faces", "satisfaction", "top emotion", "outage s"):
        table.add_column(name, justify="left" if name in ("camera", "top emotion") else "right")
    for name in sorted({r.camera for r in rows}):
        mine = [r for r in rows if r.camera == name]
        summary = summarize(mine)
        top = max(summary.counts, key=lambda e: summary.counts[e]) if summary.faces else "-"
        sat = "n/a" if summary.satisfaction is None else f"{summary.satisfaction:+.3f}"
        outage = sum(r.outage_s for r in mine)
        table.add_row(name, str(summary.windows), str(summary.faces), sat, top, f"{outage:.0f}")
    return table
