"""An FP16 copy of an FP32 ONNX, for TensorRT 11's strongly typed networks (onnxconverter-common)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def can_convert_fp16() -> bool:
    return importlib.util.find_spec("onnxconverter_common") is not None


def convert_to_fp16(src: Path, dst: Path) -> Path:
    """Write ``src`` with float16 weights and compute to ``dst``; input and output stay float32
    (``keep_io_types``), so the model-file contract holds."""
    import onnx

    from fer_edge.core.optional import optional_import

    float16 = optional_import("onnxconverter_common.float16", "FP16 conversion")
    model = onnx.load(str(src))
    converted = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(dst))
    return dst
