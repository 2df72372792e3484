"""FitTable: tables that fit the console width, at 80, 100 and 200 columns, with rich's own console."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from fer_edge.core.tables import FitTable, shorten


def render(renderable: object, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), force_terminal=False)
    console.print(renderable, crop=False)  # as the commands print: --wide lines may pass the edge
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def sample(wide: bool = False) -> FitTable:
    table = FitTable("sample", wide=wide, notes=["a note below the table"])
    table.add_column("Name", justify="left", shrink=True)
    table.add_column("Kind", justify="left", priority=1, short=shorten([("onnxruntime", "ort")]))
    for i in range(12):
        table.add_column(f"metric {i}\nunit", priority=2 + i)
    table.add_row("alpha.model", "onnxruntime-cpu", *[f"{1000 + i:,}.{i}" for i in range(12)])
    table.add_row("beta.model", "torch-cpu", *[f"{i}.{i:03d}" for i in range(12)])
    return table


def data_lines(lines: list[str], key: str) -> list[str]:
    return [ln for ln in lines if key in ln]


@pytest.mark.parametrize("width", [80, 100, 200])
def test_every_line_fits_and_each_row_is_one_line(width: int) -> None:
    lines = render(sample(), width)
    assert max(len(ln) for ln in lines) <= width
    for name, numbers in (("alpha.model", ["1,000.0", "1,001.1"]), ("beta.model", ["0.000", "1.001"])):
        (row,) = data_lines(lines, name)  # the whole name on exactly one line
        for number in numbers:  # the most important columns are there, numbers intact
            assert number in row


def test_more_width_shows_more_columns_and_the_note_names_the_hidden_ones() -> None:
    shown = {width: data_lines(render(sample(), width), "metric")[0].count("metric") for width in (80, 100, 200)}
    assert 0 < shown[80] < shown[100] < shown[200] == 12
    narrow = " ".join(" ".join(render(sample(), 80)).split())  # the note wraps
    hidden = 12 - shown[80]
    assert f"{hidden} columns hidden to fit 80 columns:" in narrow and "--wide shows all columns" in narrow
    assert "metric 11 unit" in narrow  # the highest priority number goes first
    assert "hidden" not in " ".join(render(sample(), 200))
    assert "a note below the table" in narrow


def test_short_labels_come_before_hiding_columns() -> None:
    table = FitTable()
    table.add_column("Kind", justify="left")
    table.add_column("Value", priority=1)
    table.add_row("onnxruntime-cpu", "12.5")
    table.columns[0].short = shorten([("onnxruntime", "ort")])
    lines = render(table, 15)
    assert data_lines(lines, "ort-cpu") and "12.5" in data_lines(lines, "ort-cpu")[0]
    assert data_lines(render(table, 40), "onnxruntime-cpu")  # full label where it fits


def test_wide_shows_every_column_past_the_width() -> None:
    lines = render(sample(wide=True), 80)
    assert data_lines(lines, "metric")[0].count("metric") == 12
    (row,) = data_lines(lines, "alpha.model")
    assert "1,011.11" in row and "onnxruntime-cpu" in row
    assert not any("hidden" in ln for ln in lines)


def test_names_are_cut_with_an_ellipsis_only_when_nothing_is_left_to_hide() -> None:
    table = FitTable()
    table.add_column("Name", justify="left", shrink=True)
    table.add_column("p50", priority=0)
    table.add_row("a-very-long-model-file-name.onnx", "12.345")
    (row,) = data_lines(render(table, 24), "12.345")
    assert "…" in row and row.startswith("a-very") and len(row) <= 24
    assert data_lines(render(table, 80), "a-very-long-model-file-name.onnx")


def test_wrap_columns_wrap_text_and_the_rest_stay_whole() -> None:
    table = FitTable(show_header=False)
    table.add_column("key", justify="left")
    table.add_column("value", justify="left", wrap=True)
    table.add_row("labels", " ".join(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"] * 3))
    table.add_row("parameters", "1,234,567")
    lines = render(table, 40)
    assert max(len(ln) for ln in lines) <= 40
    assert len(data_lines(lines, "labels")) == 1 and len(lines) > 3  # the long value wrapped
    assert "1,234,567" in data_lines(lines, "parameters")[0]


def test_a_row_with_the_wrong_number_of_cells_is_refused() -> None:
    table = FitTable()
    table.add_column("a")
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        table.add_row("1", "2")
