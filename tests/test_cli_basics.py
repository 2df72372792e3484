"""The command line itself: help, version, a torch-free import, and one-line errors for bad options."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import host_side
from typer.testing import CliRunner

from fer_edge.cli import COMMANDS, app

HEAVY = ("torch", "tensorrt", "pycuda", "cuda", "cv2")


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_and_help_do_not_import_torch_or_tensorrt() -> None:
    code = f"""
import sys
import fer_edge, fer_edge.cli, fer_edge.data, fer_edge.model.checkpoint, fer_edge.model.scoring, fer_edge.bench.evaluate
from typer.testing import CliRunner
for args in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["info", "--help"]):
    result = CliRunner().invoke(fer_edge.cli.app, args)
    assert result.exit_code == 0, (args, result.output)
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
assert not heavy, heavy
print("clean")
"""
    proc = python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean"


def test_fer_edge_help_as_a_program() -> None:
    proc = subprocess.run([sys.executable, "-m", "fer_edge", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("train", "evaluate", "info"):
        assert command in proc.stdout


def test_every_command_is_registered_and_documented() -> None:
    runner = CliRunner(env={"COLUMNS": "200"})  # rich wraps help to the terminal width
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.stdout
    train_help = runner.invoke(app, ["train", "--help"]).stdout
    for option in ("--data", "--dataset", "--votes", "--epochs", "--batch-size", "--lr", "--device", "--seed"):
        assert option in train_help
    for option in ("--limit", "--resume", "--out", "--depth", "--kernel-size", "--label-smoothing"):
        assert option in train_help
    evaluate_help = runner.invoke(app, ["evaluate", "--help"]).stdout
    for option in ("--data", "--split", "--json", "--tta", "--confusion"):
        assert option in evaluate_help


def test_version() -> None:
    from fer_edge import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"fer-edge {__version__}"


def one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@host_side
def test_unknown_dataset(tiny_fer_csv: Path, tmp_path: Path) -> None:
    line = one_line_error(["train", "--data", str(tiny_fer_csv), "--out", str(tmp_path / "r"), "--dataset", "raf-db"])
    assert "unknown dataset 'raf-db'" in line and "fer2013" in line and "ferplus" in line


TRAIN_OPTION_ERRORS: dict[str, tuple[list[str], str]] = {
    "depth": (["--depth", "9"], "'--depth': 9 is not in the range 2<=x<=7"),
    "kernel": (["--kernel-size", "7"], "'--kernel-size': 7 is not in the range 2<=x<=5"),
    "device": (["--device", "tpu"], "unknown --device 'tpu'"),
    "schedule": (["--schedule", "step"], "unknown --schedule 'step'"),
    "limit": (["--limit", "0"], "'--limit': 0 is not in the range 1<=x<="),
}


@host_side
@pytest.mark.parametrize("case", list(TRAIN_OPTION_ERRORS))
def test_bad_train_options_are_one_line_errors(case: str, make_fer_csv: Callable[..., Path], tmp_path: Path) -> None:
    data = make_fer_csv(n_train=8, n_public=4, n_private=4)
    extra, expect = TRAIN_OPTION_ERRORS[case]
    out = tmp_path / "run"
    line = one_line_error(["train", "--data", str(data), "--out", str(out), "--epochs", "1", *extra])
    assert expect in line
    assert not (out / "last.pt").exists()


@host_side
def test_refuses_an_out_that_holds_a_run(tiny_fer_csv: Path, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"an earlier run")
    line = one_line_error(["train", "--data", str(tiny_fer_csv), "--out", str(tmp_path / "run")])
    assert str(tmp_path / "run") in line and "--resume" in line
    assert (tmp_path / "run" / "last.pt").read_bytes() == b"an earlier run"


def test_typer_usage_errors_are_not_tracebacks(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--epochs", "0", "--data", "x.csv", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == "error: Invalid value for '--epochs': 0 is not in the range 1<=x<=10000"
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path)])
    assert result.exit_code == 2 and result.output.strip() == "error: Missing option '--data'."
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code == 2 and "Traceback" not in result.output
