"""The ``fer-edge`` command line. Each command lives in ``fer_edge/commands/<name>.py``.

Command modules import only light packages at top level, so ``fer-edge --help`` never
imports torch or tensorrt.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from typing_extensions import get_type_hints

from fer_edge import __version__
from fer_edge.commands import (
    bench,
    build_engine,
    check_onnx,
    evaluate,
    export,
    fetch_detector,
    info,
    quantize,
    report,
    run,
    sync,
    train,
)
from fer_edge.commands.options import OneLineUsageErrors
from fer_edge.core import quiet
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.host_python import HOST_COMMANDS, require_host_python

app = typer.Typer(
    name="fer-edge",
    help="Facial-expression CNN from training to a fast INT8 TensorRT engine on a Jetson camera.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def one_line_errors(func: Callable[..., Any], host_only: str | None = None) -> Callable[..., Any]:
    """User errors become one line on stderr and exit code 2; Ctrl-C exits 130. No traceback.

    ``host_only`` names a command that needs the workstation's Python (train, export, quantize).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            if host_only:
                require_host_python(host_only)
            return func(*args, **kwargs)
        except FerEdgeError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


COMMANDS: dict[str, Callable[..., Any]] = {
    "train": train.train,
    "evaluate": evaluate.evaluate,
    "info": info.info,
    "export": export.export,
    "quantize": quantize.quantize,
    "check-onnx": check_onnx.check_onnx,
    "build-engine": build_engine.build_engine,
    "bench": bench.bench,
    "run": run.run,
    "fetch-detector": fetch_detector.fetch_detector,
    "report": report.report,
    "sync": sync.sync,
}


def resolve_annotations(func: Callable[..., Any]) -> Callable[..., Any]:
    """Evaluate a command's string annotations (PEP 563) with their ``Annotated`` metadata.

    Typer on Python < 3.10 reads ``inspect.signature`` without evaluating strings, so with
    ``from __future__ import annotations`` every ``typer.Option`` in ``Annotated`` would be lost
    there (options turned into arguments, help texts gone): JetPack 5 runs Python 3.8.
    """
    func.__annotations__ = get_type_hints(func, include_extras=True)
    return func


for _name, _func in COMMANDS.items():
    resolve_annotations(_func)
    _host_only = _name if _name in HOST_COMMANDS else None
    app.command(_name, cls=OneLineUsageErrors)(one_line_errors(_func, host_only=_host_only))


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fer-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version."
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        envvar="FER_EDGE_VERBOSE",
        help="Also show the libraries' own logs and warnings (OpenCV, FFmpeg, PyTorch, ONNX Runtime); "
        "goes before the command: fer-edge -v run ...",
    ),
) -> None:
    """fer-edge: train, shrink and deploy a small facial-expression CNN."""
    quiet.configure(verbose)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
