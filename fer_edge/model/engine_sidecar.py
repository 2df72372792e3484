"""The ``<engine>.json`` sidecar: what an engine was built from, with what, on what (pure).

An engine only runs on the TensorRT version and GPU that built it; the sidecar lets
fer-edge say so in one line, with the command that rebuilds it, instead of TensorRT's
deserialisation error (or a crash).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.files import file_sha256

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")  # the module's name on a Jetson
FORMAT = "fer-edge-engine"
FORMAT_VERSION = 1
BUILT_BY_FER_EDGE = "fer-edge"
BUILT_BY_TRTEXEC = "trtexec"


def sidecar_path(engine: str | Path) -> Path:
    """``model.int8.engine`` → ``model.int8.engine.json``."""
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def board_model_here(path: Path | None = None) -> str | None:
    """The device-tree model (NUL-terminated), e.g. ``NVIDIA Jetson Orin Nano Developer Kit``;
    None off a Jetson (no such file) or where it is empty."""
    try:
        raw = (path or DEVICE_TREE_MODEL).read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b"").decode("utf-8", "replace").strip() or None


@dataclass(frozen=True)
class DeviceInfo:
    """The TensorRT version and GPU an engine is built on or loaded on."""

    tensorrt_version: str
    gpu_name: str  # "unknown" where no CUDA binding could ask
    compute_capability: str  # "8.7"; "unknown" likewise
    # Every Orin module reports GPU "Orin" and 8.7: the SM count and the board tell them apart.
    sm_count: int | None = None
    board_model: str | None = None

    @property
    def sm(self) -> str:
        if self.compute_capability == "unknown":
            return "sm_?"
        return "sm_" + self.compute_capability.replace(".", "")

    def describe(self) -> str:
        return f"TensorRT {self.tensorrt_version} on GPU {self.gpu_name} ({self.sm})"


@dataclass(frozen=True)
class Sidecar:
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profile: dict[str, list[int]]
    source_onnx: str
    source_onnx_sha256: str
    labels: list[str]
    dataset: str
    engine_sha256: str
    engine_bytes: int
    build_command: str
    built_at: str
    build_seconds: float
    strongly_typed: bool = False
    dla_core: int | None = None
    input_name: str = "input"
    output_name: str = "logits"
    metadata: dict[str, str] = field(default_factory=dict)
    fer_edge_version: str = ""
    # "fer-edge", or "trtexec" for a sidecar written ahead by --print-trtexec (no engine hash or
    # GPU yet: loading such an engine checks less and says so).
    built_by: str = BUILT_BY_FER_EDGE
    # Where the engine's layers run, from TensorRT's engine inspector / can_run_on_DLA (or None).
    layers: dict[str, Any] | None = None
    sm_count: int | None = None  # of the GPU that built it (None: unknown, or an older sidecar)
    board_model: str | None = None  # /proc/device-tree/model where it was built (None off a Jetson)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def written_ahead(self) -> bool:
        """Written by ``--print-trtexec`` before trtexec built the engine: no hash, no GPU."""
        return self.built_by == BUILT_BY_TRTEXEC

    @property
    def built_on(self) -> DeviceInfo:
        return DeviceInfo(self.tensorrt_version, self.gpu_name, self.compute_capability,
                          sm_count=self.sm_count, board_model=self.board_model)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def write_sidecar(engine: str | Path, sidecar: Sidecar) -> Path:
    path = sidecar_path(engine)
    write_text_atomic(path, sidecar.to_json())
    return path


def read_sidecar(engine: str | Path) -> Sidecar:
    """Read and check the sidecar beside ``engine``; every problem is a one-line error."""
    engine = Path(engine)
    path = sidecar_path(engine)
    if not path.is_file():
        raise FerEdgeError(
            f"no sidecar {path.name} beside this engine; fer-edge needs the one build-engine writes "
            "(rebuild with: fer-edge build-engine MODEL.onnx --precision ... --out "
            f"{engine}; for an engine built with trtexec, add --print-trtexec to write the sidecar only)",
            path=engine,
        )
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise FerEdgeError(f"cannot read the sidecar: {exc.strerror or exc}", path=path) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # binary, not JSON, absurdly nested
        raise FerEdgeError(f"sidecar is not valid JSON ({exc.__class__.__name__})", path=path) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise FerEdgeError(f"not a fer-edge engine sidecar (no 'format: {FORMAT}')", path=path)
    if raw.get("format_version") != FORMAT_VERSION:
        raise FerEdgeError(f"sidecar format_version {raw.get('format_version')!r} is not {FORMAT_VERSION}",
                           path=path)
    known = {k: v for k, v in raw.items() if k in Sidecar.__dataclass_fields__}
    try:
        sidecar = Sidecar(**known)
    except TypeError as exc:
        missing = str(exc).split(":")[-1].strip()
        raise FerEdgeError(f"sidecar is missing {missing}", path=path) from None
    labels = sidecar.labels
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise FerEdgeError("sidecar has no labels (a non-empty list of class names)", path=path)
    _check_types(sidecar, path)
    return sidecar


def warn(message: str) -> None:
    """One ``warning:`` line on stderr (the CLI's errors are ``error:`` lines)."""
    sys.stderr.write(f"warning: {message}\n")


_TEXT_FIELDS = ("tensorrt_version", "gpu_name", "compute_capability", "precision", "source_onnx",
                "source_onnx_sha256", "dataset", "engine_sha256", "build_command", "built_at")


def _check_types(sidecar: Sidecar, path: Path) -> None:
    """Wrong-typed entries (a hand-edited or foreign file) are refused here, not later as a crash."""
    for name in _TEXT_FIELDS:
        if not isinstance(getattr(sidecar, name), str):
            raise FerEdgeError(f"sidecar entry {name!r} is not a string", path=path)
    if not isinstance(sidecar.engine_bytes, int) or isinstance(sidecar.engine_bytes, bool):
        raise FerEdgeError("sidecar entry 'engine_bytes' is not an integer", path=path)
    if not isinstance(sidecar.profile, dict) or not isinstance(sidecar.metadata, dict):
        raise FerEdgeError("sidecar entries 'profile' and 'metadata' must be JSON objects", path=path)


def check_engine_file(engine: str | Path, sidecar: Sidecar) -> None:
    """The engine is the very file the sidecar describes: not truncated, not swapped.

    A sidecar written ahead by ``--print-trtexec`` has no hash to check against: the engine is
    accepted with a one-line warning.
    """
    engine = Path(engine)
    if not engine.is_file():
        raise FerEdgeError("file not found", path=engine)
    if sidecar.written_ahead:
        warn(f"{engine}: built by trtexec, its sidecar written ahead by --print-trtexec: the engine's bytes "
             "and GPU are not checked, only the TensorRT version; for full checks build it with "
             "fer-edge build-engine (same options, without --print-trtexec)")
        return
    size = engine.stat().st_size
    if size != sidecar.engine_bytes or file_sha256(engine) != sidecar.engine_sha256:
        what = "truncated" if size < sidecar.engine_bytes else "replaced or corrupt"
        raise FerEdgeError(
            f"engine file does not match its sidecar ({size} bytes, expected {sidecar.engine_bytes}: "
            f"{what}); rebuild with: {sidecar.build_command}", path=engine,
        )


def same_tensorrt(built: str, here: str) -> bool:
    """Equal versions; a shorter recorded version (``10.3``, written ahead of a trtexec build)
    matches every release that starts with it (``10.3.0.30``)."""
    a, b = built.strip().split("."), here.strip().split(".")
    if len(a) < len(b):
        return a == b[: len(a)]
    return a == b


def device_mismatch(built: DeviceInfo, here: DeviceInfo) -> str | None:
    """Why an engine built on ``built`` cannot run ``here`` (None: it can).

    TensorRT versions must be equal; GPU name and compute capability must be equal where both
    are known (engines hold kernels tuned for one GPU).
    """
    problems = not same_tensorrt(built.tensorrt_version, here.tensorrt_version)
    for a, b in ((built.gpu_name, here.gpu_name), (built.compute_capability, here.compute_capability)):
        if "unknown" not in (a, b) and a != b:
            problems = True
    if not problems:
        return None
    return f"built with {built.describe()}; this machine has {here.describe()}"


def module_mismatch(built: DeviceInfo, here: DeviceInfo) -> str | None:
    """Why an engine that passes :func:`device_mismatch` was still built on another module (None:
    same module, or not known on one side): a different SM count or device-tree model. Orin Nano,
    Orin NX and AGX Orin all report GPU "Orin", compute capability 8.7; an engine moved between
    them deserialises, but its kernels were chosen and timed for the other module's GPU."""
    differ = []
    if built.sm_count is not None and here.sm_count is not None and built.sm_count != here.sm_count:
        differ.append(f"{built.sm_count} SMs, this one has {here.sm_count}")
    if built.board_model and here.board_model and built.board_model != here.board_model:
        differ.append(f"board {built.board_model!r}, this is {here.board_model!r}")
    if not differ:
        return None
    return "built on another module (" + "; ".join(differ) + ")"


def check_device(engine: str | Path, sidecar: Sidecar, here: DeviceInfo) -> None:
    """Refuse an engine from another TensorRT or GPU; warn (one line) for one from another module."""
    reason = device_mismatch(sidecar.built_on, here)
    if reason is not None:
        raise FerEdgeError(f"engine {reason}; rebuild with: {sidecar.build_command}", path=engine)
    moved = module_mismatch(sidecar.built_on, here)
    if moved is not None:
        warn(f"{engine}: {moved}: it runs, but may be slower than one built here; rebuild with: "
             f"{sidecar.build_command}")


def sidecar_metadata(sidecar: Sidecar) -> dict[str, Any]:
    """The model metadata a backend exposes for an engine (ONNX metadata + engine facts)."""
    meta: dict[str, Any] = dict(sidecar.metadata)
    meta.update({
        "labels": json.dumps(sidecar.labels), "dataset": sidecar.dataset,
        "tensorrt_version": sidecar.tensorrt_version, "gpu_name": sidecar.gpu_name,
        "compute_capability": sidecar.compute_capability, "source_onnx_sha256": sidecar.source_onnx_sha256,
    })
    return {k: str(v) for k, v in meta.items()}
