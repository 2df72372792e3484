"""Every file a command takes is declared to the output guard, so that no output can overwrite it.

The walk reads each command's path parameters from the registered commands: a new file option that
is not declared to ``paths.guard_outputs`` fails here without anyone writing a test for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from conftest import skip_host_command_off_host
from typer.testing import CliRunner

from fer_edge.cli import COMMANDS, app
from fer_edge.core import paths

# Commands that write no file: nothing of theirs can be overwritten by an output of theirs.
NO_OUTPUTS = {"info", "check-onnx", "sync"}
# Names that select a file type by suffix, so the command gets as far as its guard.
SUFFIX = {"model": ".onnx", "models": ".onnx", "extra_models": ".onnx", "checkpoint": ".pt", "detector_model": ".onnx",
          "data": ".csv", "votes": ".csv", "camera": ".avi", "from_file": ".onnx", "teacher": ".npz",
          "manifest": ".json", "log": ".db", "out": ".onnx", "save_video": ".avi", "timing_cache": ".cache"}


class Guarded(Exception):
    pass


def is_path(param: Any) -> bool:
    if hasattr(param, "type"):  # Click's types (Typer < 0.29)
        return param.type.name == "path"
    return str(param.bare_type()) == "Path"


def path_params() -> list[tuple[str, Any]]:
    group: Any = typer.main.get_command(app)
    return [(name, group.commands[name]) for name in COMMANDS if name not in NO_OUTPUTS]


@pytest.mark.parametrize(("command", "click_command"), path_params(), ids=[c for c, _ in path_params()])
def test_every_path_parameter_reaches_the_guard(command: str, click_command: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    skip_host_command_off_host(command)
    seen: dict[str, str] = {}

    def record(inputs: paths.Named, outputs: paths.Named, *args: Any, **kwargs: Any) -> None:
        for name, value in {**inputs, **outputs}.items():
            if value is not None:
                seen[str(Path(value))] = name

    def guard(inputs: paths.Named, outputs: paths.Named, *args: Any, **kwargs: Any) -> None:
        record(inputs, outputs)
        raise Guarded

    monkeypatch.setattr(paths, "guard_outputs", guard)
    monkeypatch.setattr(paths, "refuse_output_overlap", record)
    args: list[str] = [command]
    given: dict[str, Path] = {}
    for param in click_command.params:
        if not is_path(param):
            continue
        path = tmp_path / f"{param.name}{SUFFIX.get(param.name, '.bin')}"
        path.write_bytes(b"placeholder")
        given[param.name] = path
        if param.param_type_name == "argument":
            args.insert(1, str(path))
        else:
            args += [param.opts[0], str(path)]
    if command == "run":
        args += ["--source", "0"]
    if command == "report":  # LOG is text: a mood log or a PostgreSQL URL
        args.insert(1, str(tmp_path / "mood.db"))
    if command == "quantize" and "--data" not in args:
        args += ["--data", str(tmp_path / "data.csv")]
    assert given, f"{command} takes no file?"
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, Guarded), (args, result.output, result.exception)
    missing = {name: str(p) for name, p in given.items() if str(p) not in seen}
    assert not missing, f"{command}: files not declared to the output guard: {missing}"
