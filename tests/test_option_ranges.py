"""Every numeric option of every command is range-checked and finite, before the command does any work.

The walk reads the options from the registered commands themselves, so a new numeric option is
fed the same bad values without anyone writing a test for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from fer_edge.cli import COMMANDS, app

BAD_VALUES = ("-1", "0", "1000000000000000", "inf", "nan")
# Where zero is a real setting (0 disables, seed 0, DLA core 0...); negative is valid nowhere.
ZERO_IS_VALID = {
    ("train", "--weight-decay"),
    ("train", "--label-smoothing"),
    ("train", "--ema"),
    ("train", "--dropout"),
    ("train", "--erase"),
    ("train", "--rotate"),
    ("train", "--shift"),
    ("train", "--seed"),
    ("train", "--kd-weight"),
    ("quantize", "--seed"),
    ("quantize", "--max-drop"),
    ("build-engine", "--dla"),
    ("build-engine", "--opt-level"),
    ("run", "--reinfer-iou"),
    ("run", "--max-missed"),
    ("run", "--settle"),
    ("run", "--max-missed-new"),
    ("run", "--small-face"),
    ("bench", "--reinfer-iou"),  # bench --camera takes run's camera options
    ("bench", "--max-missed"),
    ("bench", "--settle"),  # 0: a new face is classified at its first look only
    ("bench", "--max-missed-new"),
    ("bench", "--small-face"),  # 0: off
    ("sync", "--retry-for"),
}
NUMERIC_TYPES = ("integer", "float", "integer range", "float range")  # Click's INT, FLOAT, IntRange, FloatRange


def is_numeric(param: Any) -> bool:
    """Click's parameter types on Typer < 0.29; Typer 0.29 (its own Click) names the Python type."""
    if hasattr(param, "type"):
        return param.type.name in NUMERIC_TYPES
    return str(param.bare_type()) in ("int", "float")


def _required_args(command: str, tmp: Path) -> list[str]:
    """Just enough for the command line to parse: inputs that do not exist, outputs in ``tmp``."""
    missing = str(tmp / "missing.onnx")
    return {
        "train": ["--data", str(tmp / "missing.csv"), "--out", str(tmp / "run")],
        "quantize": [missing, "--data", str(tmp / "missing.csv"), "--out", str(tmp / "out.onnx")],
        "export": [str(tmp / "missing.pt"), "--out", str(tmp / "out.onnx")],
        "build-engine": [missing, "--out", str(tmp / "out.engine")],
        "check-onnx": [missing],
        "report": [str(tmp / "missing.db")],
        "run": ["--source", str(tmp / "missing.mp4"), "--log", str(tmp / "mood.db")],
    }.get(command, [])


def numeric_options() -> list[tuple[str, str]]:
    group: Any = typer.main.get_command(app)
    found = []
    for name in COMMANDS:
        for param in group.commands[name].params:
            if param.param_type_name == "option" and is_numeric(param):
                found.append((name, param.opts[0]))
    return found


def test_the_walk_finds_the_numeric_options() -> None:
    found = set(numeric_options())
    for expected in [("train", "--lr"), ("train", "--threads"), ("quantize", "--max-drop"), ("bench", "--min-time"),
                     ("run", "--window"), ("run", "--detect-width"), ("run", "--fps"), ("sync", "--retry-for")]:
        assert expected in found
    assert len(found) >= 45
    assert found >= ZERO_IS_VALID, ZERO_IS_VALID - found  # the allow-list names real options


@pytest.mark.parametrize(("command", "option"), numeric_options())
def test_every_numeric_option_refuses_bad_values_in_one_line(command: str, option: str, tmp_path: Path) -> None:
    runner = CliRunner()
    for value in BAD_VALUES:
        if value == "0" and (command, option) in ZERO_IS_VALID:
            continue
        args = [command, f"{option}={value}", *_required_args(command, tmp_path)]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)
        assert option in lines[0], (args, lines[0])
        assert sorted(p.name for p in tmp_path.iterdir()) == [], (args, "wrote something")


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["train", "--lr", "nan"], "finite"),
        (["train", "--lr", "0"], "0<x<=10"),
        (["train", "--label-smoothing", "1.5"], "--label-smoothing"),
        (["train", "--threads", "100000"], "1<=x<=1024"),
        (["quantize", "--max-drop", "nan"], "finite"),
        (["bench", "--batch", "1000000"], "batch size 1000000 is above 4096"),
        (["bench", "--batch", "1,8,0"], "batch size must be at least 1"),
        (["run", "--detect-width", "-100"], "--detect-width"),
        (["run", "--stats-every", "0"], "--stats-every"),
        (["run", "--min-face", "100000"], "--min-face"),
    ],
)
def test_named_cases_from_the_field(args: list[str], expect: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*args, *_required_args(args[0], tmp_path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], result.output


def test_valid_values_still_parse(tmp_path: Path) -> None:
    """The ranges do not refuse the defaults or the documented settings: the command gets past parsing
    and fails on the missing model instead."""
    result = CliRunner().invoke(app, ["run", "--window", "0.5", "--fps", "29.97", "--reinfer-iou", "0",
                                      *_required_args("run", tmp_path)])
    assert "Invalid value" not in result.output
