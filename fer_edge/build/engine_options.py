"""Everything ``fer-edge build-engine`` is asked to do, validated up front (pure)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from fer_edge.build.trt_versions import PRECISIONS
from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime.engine_profile import BatchProfile

MAX_OPT_LEVEL = 5


@dataclass(frozen=True)
class BuildOptions:
    onnx: Path
    out: Path
    precision: str = "int8"
    batch: BatchProfile = BatchProfile(1, 8, 32)
    workspace_mb: int = 256
    timing_cache: Path | None = None
    dla_core: int | None = None
    opt_level: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            choices = ", ".join(PRECISIONS)
            raise FerEdgeError(f"unknown precision {self.precision!r}; choose one of: {choices}")
        if self.workspace_mb < 1:
            raise FerEdgeError(f"--workspace must be at least 1 MiB, got {self.workspace_mb}")
        if self.opt_level is not None and not 0 <= self.opt_level <= MAX_OPT_LEVEL:
            raise FerEdgeError(f"--opt-level must be in 0..{MAX_OPT_LEVEL}, got {self.opt_level}")
        if self.dla_core is not None:
            if self.dla_core < 0:
                raise FerEdgeError(f"--dla must be a DLA core index (0, 1, ...), got {self.dla_core}")
            if not self.batch.is_static:
                raise FerEdgeError(
                    f"the DLA needs static shapes, and --batch {self.batch} is dynamic; "
                    f"use one batch size, e.g. --batch {self.batch.opt}"
                )
        if self.out.suffix != ".engine":
            raise FerEdgeError("--out must end in .engine (the sidecar goes beside it as .engine.json)",
                               path=self.out)
        if self.out.resolve() == self.onnx.resolve():
            raise FerEdgeError("--out would overwrite the ONNX model", path=self.out)

    @property
    def workspace_bytes(self) -> int:
        return self.workspace_mb << 20

    def command_line(self) -> str:
        """The ``fer-edge build-engine`` line that rebuilds this engine (for error messages)."""
        args = ["fer-edge", "build-engine", str(self.onnx), "--precision", self.precision,
                "--out", str(self.out), "--batch", str(self.batch)]
        if self.workspace_mb != 256:
            args += ["--workspace", str(self.workspace_mb)]
        if self.timing_cache is not None:
            args += ["--timing-cache", str(self.timing_cache)]
        if self.dla_core is not None:
            args += ["--dla", str(self.dla_core)]
        if self.opt_level is not None:
            args += ["--opt-level", str(self.opt_level)]
        return shlex.join(args)
