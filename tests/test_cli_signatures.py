"""Every command's options reach Typer with their Annotated metadata, on Python 3.8 too (JetPack 5)."""

from __future__ import annotations

import inspect

from typer.testing import CliRunner

from fer_edge.cli import COMMANDS, app


def test_annotations_are_evaluated_with_their_typer_metadata() -> None:
    for name, func in COMMANDS.items():
        for param in inspect.signature(func).parameters.values():
            assert not isinstance(param.annotation, str), (name, param.name)
            assert getattr(param.annotation, "__metadata__", None), (name, param.name)  # Annotated[..., Option]
    # --source or --cameras: neither is required alone (run says so in one line when both are missing)
    assert inspect.signature(COMMANDS["run"]).parameters["source"].default is None


def test_run_source_is_an_option_with_its_help_and_environment_variable(monkeypatch: object) -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--source" in result.output and "FER_EDGE_SOURCE" in result.output
    assert "--fail-fast" in result.output and "--hold-windows" in result.output
