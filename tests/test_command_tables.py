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
from fer_edge.model.labels import FER2013_LABELS

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
    # a person's table: no JSON placeholders (null, true, false, []); --json keeps them
    assert not [ln for ln in lines if re.search(r"\s(null|true|false|\[\])$", ln.rstrip())]


def test_info_values_read_as_words() -> None:
    from fer_edge.commands.info import _flatten

    flat = dict(_flatten({"tensorrt": None, "gstreamer": False, "gpus": [], "labels": ["a", "b"], "n": 3}))
    assert flat == {"tensorrt": "–", "gstreamer": "no", "gpus": "none", "labels": "a, b", "n": "3"}


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


@pytest.mark.parametrize("width", WIDTHS)
def test_roofline_estimate_table_fits(width: int) -> None:
    import io

    from rich.console import Console

    from fer_edge.bench.estimate import estimate_layers
    from fer_edge.bench.jetson_specs import jetson_spec
    from fer_edge.bench.roofline import estimate_table, layer_bounds, total_bound_s

    layers, _ = estimate_layers([])
    spec = jetson_spec("orin-nano")
    console = Console(width=width, file=io.StringIO(), force_terminal=False)
    console.print(estimate_table(layers, spec, 64), crop=False)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert max(len(ln) for ln in lines) <= width
    low, high = (layer_bounds(layers, spec, p, 1) for p in spec.precisions)
    # every layer's name and both bounds (µs; the lower precision first) on one line, numbers whole
    for a, b in zip(low, high):
        name = a.layer.name.split("/")[-2]
        line = row_containing(lines, f"{name}/")
        assert re.search(rf"\s{a.bound_s * 1e6:.1f}\s+{a.limit}\s.*\s{b.bound_s * 1e6:.1f}\s+{b.limit}$", line), line
    totals = f"{total_bound_s(low) * 1e6:.1f}", f"{total_bound_s(high) * 1e6:.1f}"
    assert re.search(rf"^total\s.*\s{totals[0]}\s.*\s{totals[1]}$", row(lines, "total").rstrip())


def row_containing(lines: list[str], text: str) -> str:
    (line,) = [ln for ln in lines if text in ln]
    return line.rstrip()


@pytest.mark.parametrize("width", [60, *WIDTHS])
def test_quantize_report_table_fits(
    width: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_edge.build.quantize import QuantReport
    from fer_edge.commands.quantize import print_report

    report = QuantReport(
        target="tensorrt", method="percentile", calibration_images=1000, eval_split="PrivateTest",
        eval_images=3589, fp32_accuracy=0.6977, int8_accuracy=0.6957, agreement=0.9712,
        fp32_bytes=15_400_000, int8_bytes=3_900_000, fp32_latency_ms=26.952, int8_latency_ms=10.195,
    )  # fmt: skip
    monkeypatch.setenv("COLUMNS", str(width))
    print_report(report, Path("model.int8.onnx"))
    lines = capsys.readouterr().out.splitlines()
    assert max(len(ln) for ln in lines) <= width
    assert re.search(r"69\.77%\s+69\.57%\s+-0\.20 pts$", row_containing(lines, "69.77%"))
    assert re.search(r"26\.952 ms\s+10\.195 ms\s+2\.64x faster$", row_containing(lines, "26.952 ms"))
