"""FP32 ONNX → INT8 Q/DQ ONNX with ONNX Runtime's static quantisation, and an accuracy guard.

One module a job: :mod:`.settings` (layouts, methods), :mod:`.calibrate` (calibration and one
quantiser call), :mod:`.measure` (accuracy, latency, the report), :mod:`.job` (the command's
whole run). The names below are the package's public interface.
"""

from __future__ import annotations

from fer_edge.build.quantize.calibrate import (
    FaceBatchReader,
    fp32_weighted_nodes,
    input_layers,
    input_range_overrides,
    prepare_for_quantization,
    quantize_once,
    weighted_nodes,
)
from fer_edge.build.quantize.job import QuantJob, check_fp32_input, finish_model, run_quantization
from fer_edge.build.quantize.measure import QuantReport, latency_ms, predict, session
from fer_edge.build.quantize.settings import (
    DEFAULT_MAX_DROP,
    TARGETS,
    WEIGHTED_OPS,
    Method,
    Target,
    TargetSettings,
    calibration_batch,
    equal_batch_size,
    fallback_methods,
)

__all__ = [
    "DEFAULT_MAX_DROP", "TARGETS", "WEIGHTED_OPS", "FaceBatchReader", "Method", "QuantJob", "QuantReport",
    "Target", "TargetSettings", "calibration_batch", "check_fp32_input", "equal_batch_size",
    "fallback_methods", "finish_model", "fp32_weighted_nodes", "input_layers", "input_range_overrides",
    "latency_ms", "predict", "prepare_for_quantization", "quantize_once", "run_quantization", "session",
    "weighted_nodes",
]
