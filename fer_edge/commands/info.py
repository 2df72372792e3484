"""``fer-edge info``: the environment, or what a model file holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from typing_extensions import Annotated


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("model_config",):
            rows += _flatten(value, name + ".")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            rows += [(f"{name}[{i}]", json.dumps(v)) for i, v in enumerate(value)]
        else:
            rows.append((name, _human(value)))
    return rows


def _human(value: Any) -> str:
    """A value as a person reads it: no JSON null/true/[] placeholders in the table (--json keeps them)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(map(str, value)) if value else "none"
    return json.dumps(value)


def info(
    model: Annotated[
        Optional[Path], typer.Argument(help="A .pt, .onnx or .engine file; omit for the environment.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Environment (versions, CPU/GPU, Jetson, execution providers) or a model's facts."""
    from rich.console import Console
    from rich.markup import escape

    from fer_edge.core.redact import printable
    from fer_edge.core.tables import FitTable

    if model is None:
        from fer_edge.runtime.environment import environment_report

        report = environment_report()
        title = "fer-edge environment"
    else:
        from fer_edge.model.describe import model_info

        report = model_info(model)
        title = str(model)
    if as_json:
        typer.echo(json.dumps(report, default=str))
        if model is None:
            _fail_on_cuda_error(report)
        return
    table = FitTable(escape(printable(title)), show_header=False)
    table.add_column("key", justify="left", style="bold")
    table.add_column("value", justify="left", wrap=True)
    for key, value in _flatten({k: v for k, v in report.items() if k != "warnings"}):  # printed below
        if key == "parameters":
            value = f"{int(value):,}"
        # Strings from a model file: no terminal control sequences, no rich markup.
        table.add_row(escape(printable(key)), escape(printable(value)))
    console = Console()
    console.print(table)
    for warning in report.get("warnings", []) or []:
        console.print(f"[yellow]warning:[/] {escape(printable(str(warning)))}")
    if model is None:
        _fail_on_cuda_error(report)


def _fail_on_cuda_error(report: dict[str, Any]) -> None:
    """A GPU here that no binding can open is an error (exit 2), not a warning."""
    error = (report.get("cuda") or {}).get("error")
    if error:
        from fer_edge.core.errors import FerEdgeError

        raise FerEdgeError(error)
