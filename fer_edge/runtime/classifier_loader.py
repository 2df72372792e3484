"""``load_backend``: pick the backend by file type.

``.pt`` → PyTorch, ``.onnx`` → ONNX Runtime, ``.engine`` → TensorRT. Each backend module is
imported only when its file type is opened, so no heavy package loads for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.paths import require_file
from fer_edge.model.formats import DEVICES, model_format
from fer_edge.runtime.classifier_base import Backend


def backend_kind(path: str | Path) -> str:
    """``"pytorch"``, ``"onnxruntime"`` or ``"tensorrt"`` for a model path, by its suffix."""
    return model_format(path).backend


def _open_pytorch(path: Path, device: str, threads: int | None) -> Backend:
    from fer_edge.runtime.classifier_torch import open_checkpoint

    return open_checkpoint(path, device=device, threads=threads)


def _open_onnx(path: Path, device: str, threads: int | None) -> Backend:
    from fer_edge.runtime.classifier_ort import open_onnx

    return open_onnx(path, device=device, threads=threads)


def _open_engine(path: Path, device: str, threads: int | None) -> Backend:
    from fer_edge.runtime.classifier_trt import open_engine

    if device == "cpu":
        raise FerEdgeError("a TensorRT engine runs on the GPU only; use the .onnx model on the CPU",
                           path=path)
    return open_engine(path)


OPENERS: dict[str, Callable[[Path, str, int | None], Backend]] = {
    "pytorch": _open_pytorch,
    "onnxruntime": _open_onnx,
    "tensorrt": _open_engine,
}


def load_backend(path: str | Path, device: str = "auto", threads: int | None = None) -> Backend:
    """Open a fer-edge model for inference; use the result as a context manager.

    ``device``: ``auto`` (the best available), ``cpu``, ``cuda``, or ``tensorrt`` (for an
    ``.onnx``: ONNX Runtime's TensorRT provider; an ``.engine`` always runs on TensorRT).
    ``threads``: CPU threads for ONNX Runtime / torch (default: their own choice).
    """
    path = Path(path)
    kind = backend_kind(path)
    if device not in DEVICES:
        raise FerEdgeError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    require_file(path, "model file")
    return OPENERS[kind](path, device, threads)
