"""This machine's peak multiply-add rates, measured through ONNX Runtime, for ``--estimate host``.

The roofline needs a peak compute rate per precision and a memory bandwidth. A CPU's datasheet
peak (cores x clock x SIMD width) says nothing about what ONNX Runtime's kernels reach on it: on
AVX2 without VNNI, for instance, its u8s8 GEMM is only about 2x its FP32 GEMM, not 4x. So the
rates are measured with the kernels the models use:

- FP32: one ``MatMul`` A[M,K] float x W[K,N] float (W an initializer, as a layer's weights are).
- INT8: one ``MatMulInteger`` A uint8 (zero point 128) x W int8 (zero point 0) -> int32: the
  u8s8 path that ONNX Runtime's quantised Conv/MatMul kernels take on x86.
- M = K = N = ``size`` (1024: large enough to be compute-bound), ``intra_op_num_threads`` =
  ``threads``; 5 warm-up runs each, then ``ROUNDS`` rounds that alternate FP32 and INT8, each
  round the median of its runs; the rate is the best round's. A peak is what the kernels *can*
  reach, and on a shared machine a slow phase would otherwise land on one precision only and
  skew the ratio the table is for. Rate = M*K*N / time.

A 1024³ GEMM is close to the best case; the convolutions of a small CNN rarely reach it, so a
floor computed from these rates is a floor, not a prediction.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.ort import import_onnxruntime

WARMUP_RUNS = 5
OPSET = 17
IR_VERSION = 8  # the IR version that opset 17 needs; old enough for every supported onnxruntime
COPY_REPEATS = 7
ROUNDS = 8


@dataclass(frozen=True)
class HostPeaks:
    """Measured peaks of this machine; also the device that the roofline arithmetic takes."""

    fp32_gmacs: float
    int8_gmacs: float
    memory_gbs: float
    threads: int
    cpu: str
    onnxruntime: str
    method: str

    @property
    def name(self) -> str:
        return f"{self.cpu}, {self.threads} thread{'s' if self.threads != 1 else ''}"

    @property
    def memory_bandwidth_gbs(self) -> float:
        return self.memory_gbs

    @property
    def precisions(self) -> tuple[str, str]:
        return ("int8", "fp32")

    def dense_tops(self, precision: str) -> float:
        """Peak operations (2 per multiply-add) per second, in units of 10^12."""
        rates = {"int8": self.int8_gmacs, "fp32": self.fp32_gmacs}
        if precision not in rates:
            raise FerEdgeError(f"the host roofline has int8 and fp32 rates, not {precision!r}")
        return 2.0 * rates[precision] / 1e3

    @property
    def caption(self) -> str:
        return (
            f"{self.name}: measured {self.int8_gmacs:.1f} INT8 GMAC/s (u8s8 MatMulInteger), "
            f"{self.fp32_gmacs:.1f} FP32 GMAC/s (MatMul), {self.memory_gbs:.1f} GB/s (numpy copy); "
            f"ONNX Runtime {self.onnxruntime}.\n"
            "Each layer max(compute, memory), summed; compute at a large GEMM's rate, which a small CNN's "
            "convolutions rarely reach; memory at DRAM copy speed, which weights that stay in the CPU's "
            "cache between calls can beat: the floors below are the compute term alone."
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matmul_model(size: int) -> Any:
    """A[size,size] float x W (initializer) -> Y float."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "W"], ["Y"])],
        "fp32_gemm",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [size, size])],
        [numpy_helper.from_array(weights, "W")],
    )
    return _model(graph)


def _matmul_integer_model(size: int) -> Any:
    """A[size,size] uint8 (zero point 128) x W int8 (initializer, zero point 0) -> Y int32."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(1).integers(-127, 128, (size, size), dtype=np.int8)
    initializers = [
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zero"),
    ]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "W", "a_zero", "w_zero"], ["Y"])],
        "u8s8_gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size])],
        initializers,
    )
    return _model(graph)


def _model(graph: Any) -> Any:
    from onnx import helper

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def _session(model: Any, threads: int) -> Any:
    ort = import_onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Two sessions alternate here: a finished session's pool must not spin-wait on the cores the
    # other one is computing on (at 5+ ms per GEMM, waking up costs nothing measurable).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _median_run_s(session: Any, feed: dict[str, np.ndarray], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _gemm(precision: str, size: int) -> tuple[Any, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    if precision == "fp32":
        return _matmul_model(size), {"A": rng.standard_normal((size, size)).astype(np.float32)}
    if precision == "int8":
        return _matmul_integer_model(size), {"A": rng.integers(0, 256, (size, size), dtype=np.uint8)}
    raise FerEdgeError(f"gemm precision must be fp32 or int8, got {precision!r}")


def runs_per_round(repeats: int) -> int:
    """``repeats`` timed runs in all, spread over the ``ROUNDS`` rounds (at least one each)."""
    return max(1, -(-repeats // ROUNDS))


def peak_gmacs(precisions: tuple[str, ...], threads: int, size: int = 1024, repeats: int = 30) -> dict[str, float]:
    """Best-round multiply-adds per second (10^9) of a size³ GEMM per precision, rounds interleaved."""
    runs = {p: (_session(model, threads), feed) for p in precisions for model, feed in [_gemm(p, size)]}
    for session, feed in runs.values():
        for _ in range(WARMUP_RUNS):
            session.run(None, feed)
    best = dict.fromkeys(precisions, float("inf"))
    for _ in range(ROUNDS):
        for p, (session, feed) in runs.items():
            best[p] = min(best[p], _median_run_s(session, feed, runs_per_round(repeats)))
    return {p: size**3 / seconds / 1e9 for p, seconds in best.items()}


def copy_bandwidth_gbs(megabytes: int = 256, repeats: int = COPY_REPEATS) -> float:
    """Bytes read + bytes written per second (10^9) of one large numpy copy, median of ``repeats``.

    An approximation of DRAM bandwidth, on the low side: numpy copies on one thread (all cores
    together can draw more), and a plain store first reads the destination line into the cache
    (write-allocate), so the memory moves about 3 bytes for the 2 counted here. It is still the
    right order for the roofline's question: can the layer's bytes arrive as fast as its math?
    """
    n = megabytes * 1_000_000 // 8
    src = np.arange(n, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch every page of dst before timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times) / 1e9


def method_note(size: int, repeats: int, copy_mb: int) -> str:
    return (
        f"onnxruntime CPU, M=K=N={size}: fp32 MatMul A float x W float initializer; int8 MatMulInteger "
        f"A uint8 (zero point 128) x W int8 initializer (zero point 0) -> int32; {WARMUP_RUNS} warm-up runs, "
        f"then {ROUNDS} rounds alternating fp32 and int8, {runs_per_round(repeats)} timed runs each; "
        f"the best round's median; GMAC/s = M*K*N / time. Memory: numpy copy of {copy_mb} MB, "
        f"median of {COPY_REPEATS}, (read + written bytes) / time."
    )


def measure_host_peaks(
    threads: int,
    size: int = 1024,
    repeats: int = 30,
    copy_mb: int = 256,
    on_stage: Callable[[str], None] | None = None,
) -> HostPeaks:
    """Measure this machine's FP32 and INT8 GEMM rates and its memory copy bandwidth."""
    ort = import_onnxruntime()

    from fer_edge.bench.machine import cpu_model

    if threads < 1 or size < 1 or repeats < 1 or copy_mb < 1:
        raise FerEdgeError("threads, size, repeats and copy size must be at least 1")
    stage = on_stage or (lambda _text: None)
    stage(f"FP32 and INT8 GEMM {size}³, {threads} threads, {ROUNDS} interleaved rounds")
    rates = peak_gmacs(("fp32", "int8"), threads, size, repeats)
    fp32, int8 = rates["fp32"], rates["int8"]
    stage(f"memory copy, {copy_mb} MB")
    memory = copy_bandwidth_gbs(copy_mb)
    return HostPeaks(
        fp32_gmacs=fp32,
        int8_gmacs=int8,
        memory_gbs=memory,
        threads=threads,
        cpu=cpu_model(),
        onnxruntime=ort.__version__,
        method=method_note(size, repeats, copy_mb),
    )
