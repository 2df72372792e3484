"""Every table a command prints fits the terminal: ``info``, ``evaluate`` and ``report`` at 80, 100, 200 columns.

rich takes the width from ``COLUMNS`` when the output is not a terminal, as under CliRunner.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, synthetic_faces, write_fer_csv
from test_report import known_log  # noqa: F401  (a fixture)
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.labels import FER2013_LABELS

SHIPPED_INT8 = REPO / "fer_edge" / "weights" / "fer2013.int8.onnx"
WIDTHS = [80, 100, 200]


def run_at(width: int, *args: str | Path) -> list[str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(ln) for ln in lines) <= width, "\n".join(ln for ln in lines if len(ln) > width)
    return lines


def row(lines: list[str], first: str) -> str:
    (line,) = [ln for ln in lines if ln.split()[:1] == [first]]
    return line


@pytest.mark.parametrize("width", WIDTHS)
def test_info_of_a_model_fits(width: int) -> None:
    lines = run_at(width, "info", SHIPPED_INT8)
    assert re.search(r"\d{1,3}(,\d{3})+$", row(lines, "parameters").rstrip())  # the whole count on its line
    assert "angry" in " ".join(lines) and "neutral" in " ".join(lines)


@pytest.mark.parametrize("width", WIDTHS)
def test_info_of_the_environment_fits(width: int) -> None:
    lines = run_at(width, "info")
    assert row(lines, "python")


@pytest.fixture(scope="module")
def faces_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, labels = synthetic_faces(70, 7, seed=3)
    return write_fer_csv(tmp_path_factory.mktemp("data") / "faces.csv", images, labels, ["PrivateTest"] * 70)


@pytest.mark.parametrize("width", WIDTHS)
def test_evaluate_table_fits(width: int, faces_csv: Path) -> None:
    lines = run_at(width, "evaluate", SHIPPED_INT8, "--data", faces_csv, "--device", "cpu", "--threads", "1")
    for label in FER2013_LABELS:  # class, precision, recall, F1, support: one line each, numbers whole
        assert re.fullmatch(rf"{label}\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\s+\d+", row(lines, label).strip())


@pytest.mark.parametrize("width", WIDTHS)
def test_report_table_fits(width: int, known_log: Path) -> None:  # noqa: F811
    lines = run_at(width, "report", known_log)
    assert re.fullmatch(r"happy\s+positive\s+3\s+42\.9%", row(lines, "happy").strip())
    assert re.fullmatch(r"all\s+7\s+100\.0%", row(lines, "all").strip())
