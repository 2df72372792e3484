"""The models that ship with fer-edge, under ``fer_edge/weights/``."""

from __future__ import annotations

from pathlib import Path

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.machine import nvidia_gpu_present

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def shipped_model(dataset: str = "fer2013", precision: str = "int8", target: str = "tensorrt") -> Path:
    """Path of a shipped ONNX model: ``fer2013.onnx``, ``fer2013.int8.onnx``, ``fer2013.int8.cpu.onnx``..."""
    if precision == "fp32":
        name = f"{dataset}.onnx"
    elif target == "cpu":
        name = f"{dataset}.int8.cpu.onnx"
    else:
        name = f"{dataset}.int8.onnx"
    path = WEIGHTS_DIR / name
    if not path.exists():
        raise FerEdgeError(f"shipped model {name} is not in this installation ({WEIGHTS_DIR})")
    return path


def default_model(device: str = "auto", dataset: str = "fer2013") -> Path:
    """The shipped INT8 model whose layout fits ``device``.

    The TensorRT layout (Q/DQ on Conv/Gemm inputs only) is what TensorRT fuses best, but ONNX
    Runtime's CPU kernels cannot run its convolutions in integer arithmetic, so on a CPU it is
    slower than FP32; the CPU layout is the fast one there.
    """
    gpu = device in ("cuda", "tensorrt") or (device == "auto" and nvidia_gpu_present())
    return shipped_model(dataset, "int8", "tensorrt" if gpu else "cpu")
