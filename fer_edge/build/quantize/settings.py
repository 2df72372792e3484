"""What to quantise and how: the two Q/DQ layouts, calibration methods, batch sizes (pure).

Two layouts of the same explicit-quantisation graph:

- ``tensorrt`` (default): NVIDIA's placement for TensorRT's explicit quantisation: Q/DQ only on
  the inputs of Conv/Gemm (activations per tensor, weights per channel, int8, symmetric, zero
  point 0 given explicitly), float biases, nothing on a Conv/Gemm output (so nothing between it
  and its ReLU, and nothing on the logits), MaxPool left to TensorRT. Checked by
  :mod:`fer_edge.build.qdq_rules`; the sources are cited in docs/quantization.md.
- ``cpu``: uint8 activations, int8 per-channel weights and int32 biases, Q/DQ around every
  Conv/Gemm output too, so ONNX Runtime fuses every Conv/Gemm (and the ReLU after it) into its
  integer kernels: the fastest on x86 and ARM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

DEFAULT_MAX_DROP = 0.5  # accuracy points
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")
PROGRESS = Callable[[str], None]


class Target(str, Enum):
    tensorrt = "tensorrt"
    cpu = "cpu"


class Method(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


@dataclass(frozen=True)
class TargetSettings:
    activation_type: str  # "QInt8" | "QUInt8" (onnxruntime.quantization.QuantType names)
    weight_type: str
    op_types: tuple[str, ...]
    extra_options: dict[str, Any] = field(default_factory=dict)


# Why these layouts (measured in benchmarks/quantize/):
# - TensorRT rejects uint8 and non-zero zero points and int32-bias DequantizeLinear nodes, so the
#   tensorrt layout is int8 symmetric with float biases. NVIDIA's guidance is Q/DQ on the inputs
#   of weighted layers only: a pair on a Conv output (before its ReLU) or after a ReLU/MaxPool
#   blocks TensorRT's Conv+ReLU fusion and adds reformat layers, and one on the graph output
#   quantises the logits. ONNX Runtime's quantiser places exactly that with Conv/Gemm as the
#   only quantised op types and their outputs excluded.
# - ONNX Runtime fuses DQ→Conv→Q into QLinearConv and drops the ReLU when activations are uint8
#   with their zero point at the ReLU's floor; that needs a quantised output and an int32 bias.
TARGETS: dict[Target, TargetSettings] = {
    Target.tensorrt: TargetSettings(
        activation_type="QInt8",
        weight_type="QInt8",
        op_types=("Conv", "Gemm"),
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "OpTypesToExcludeOutputQuantization": ["Conv", "Gemm"],
        },
    ),
    Target.cpu: TargetSettings(
        activation_type="QUInt8",
        weight_type="QInt8",
        op_types=("Conv", "Gemm", "MatMul", "MaxPool", "Relu", "Flatten"),
        extra_options={"WeightSymmetric": True},
    ),
}


def equal_batch_size(n: int, preferred: int = 50) -> int:
    """The largest batch size <= ``preferred`` that divides ``n`` (ORT's histogram calibrators
    fail on a short last batch); 0 when only tiny divisors exist (caller drops the remainder)."""
    for size in range(min(preferred, n), 0, -1):
        if n % size == 0:
            return size if size >= min(8, n) else 0
    return 0


def fallback_methods(chosen: Method) -> list[Method]:
    """Calibration methods to try, all layers INT8, when ``chosen`` misses the accuracy bound.

    Percentile first: of the three it clips least of the rare large activations that entropy
    calibration cuts off, and those matter most for symmetric int8 (half its codes unused after
    a ReLU)."""
    return [m for m in (Method.percentile, Method.entropy, Method.minmax) if m is not chosen]


def calibration_batch(n: int) -> int:
    return equal_batch_size(n) or min(32, n)

