"""``fer-edge fetch-detector``: download YuNet (OpenCV Zoo, MIT) into the cache dir, hash-checked."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated


def fetch_detector(
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Where to put it; default: the cache dir, where `run` looks."),
    ] = None,
    from_file: Annotated[
        Optional[Path],
        typer.Option(help="Install a copy you downloaded elsewhere (checked the same way) instead."),
    ] = None,
) -> None:
    """Get the YuNet face detector (230 KB) and check its SHA-256 before first use."""
    from fer_edge.camera.detector_file import YUNET_SHA256, YUNET_URL, cached_yunet, install_yunet
    from fer_edge.core.paths import guard_outputs

    guard_outputs({"--from-file": from_file}, {"--out": out if out is not None else cached_yunet()})

    source = from_file if from_file is not None else YUNET_URL
    path = install_yunet(out, from_file=from_file)
    typer.echo(f"YuNet at {path} (SHA-256 {YUNET_SHA256[:16]}..., from {source})")
