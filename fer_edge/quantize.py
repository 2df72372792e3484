"""FP32 ONNX → INT8 Q/DQ ONNX with ONNX Runtime's static quantisation, and an accuracy guard.

Two layouts of the same explicit-quantisation graph:

- ``tensorrt`` (default): int8 activations and weights, symmetric, per-channel weights, float
  biases: what TensorRT 8.6/10/11 build into INT8 kernels (checked by :mod:`fer_edge.onnx_rules`).
- ``cpu``: uint8 activations, int8 per-channel weights and int32 biases, so ONNX Runtime fuses
  every Conv/Gemm (and the ReLU after it) into its integer kernels: the fastest on x86 and ARM.

Calibration ranges are computed once per run and cached, so the per-layer sensitivity analysis
of the accuracy guard only re-quantises (it does not re-calibrate).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fer_edge.atomic import atomic_path
from fer_edge.errors import FerEdgeError
from fer_edge.onnx_model import (
    INPUT_NAME,
    OUTPUT_NAME,
    contract_violations,
    get_metadata,
    is_quantized,
    load_onnx,
    set_metadata,
)
from fer_edge.ort import import_onnxruntime

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
#   tensorrt layout is int8 symmetric with float biases. Q/DQ only around the ops TensorRT runs in
#   INT8 here (Conv, Gemm, the pooling between them); Sub/Mul normalisation stays float.
# - ONNX Runtime fuses DQ→Conv→Q into QLinearConv and drops the ReLU when activations are uint8
#   with their zero point at the ReLU's floor; that needs a quantised (int32) bias.
TARGETS: dict[Target, TargetSettings] = {
    Target.tensorrt: TargetSettings(
        activation_type="QInt8",
        weight_type="QInt8",
        op_types=("Conv", "Gemm", "MatMul", "MaxPool", "Relu", "Flatten"),
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
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


class FaceBatchReader:
    """A ``CalibrationDataReader`` over uint8 ``[N,48,48]`` faces, in equal-sized float batches."""

    def __init__(self, images: np.ndarray, batch_size: int) -> None:
        self.batch_size = batch_size
        usable = len(images) - len(images) % batch_size
        self.images = images[:usable]
        self._start, self._end = 0, len(self.images) // batch_size
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._end:
            return None
        i = self._next * self.batch_size
        self._next += 1
        return {INPUT_NAME: self.images[i : i + self.batch_size, None].astype(np.float32)}

    def __len__(self) -> int:  # in batches, for ORT's strided calibration
        return len(self.images) // self.batch_size

    def set_range(self, start_index: int, end_index: int) -> None:
        self._start, self._end, self._next = start_index, end_index, start_index

    def rewind(self) -> None:
        self._start, self._end, self._next = 0, len(self), 0


def _ort_enums(target: Target, method: Method) -> tuple[Any, Any, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantType

    settings = TARGETS[target]
    calib = {
        Method.minmax: CalibrationMethod.MinMax,
        Method.entropy: CalibrationMethod.Entropy,
        Method.percentile: CalibrationMethod.Percentile,
    }[method]
    return getattr(QuantType, settings.activation_type), getattr(QuantType, settings.weight_type), calib


def quantize_once(
    prepared: Path,
    out: Path,
    images: np.ndarray,
    target: Target,
    method: Method,
    cache: Path,
    exclude: Sequence[str] = (),
) -> None:
    """One ``quantize_static`` call; the calibration ranges are read from (or written to) ``cache``."""
    import logging

    from onnxruntime.quantization import QuantFormat, quantize_static

    settings = TARGETS[target]
    act, weight, calib = _ort_enums(target, method)
    batch = calibration_batch(len(images))
    extra = dict(settings.extra_options)
    if method is Method.minmax:
        extra["CalibStridedMinMax"] = max(1, min(len(images) // batch, 8))  # bounded memory
        if (len(images) // batch) % extra["CalibStridedMinMax"]:
            extra.pop("CalibStridedMinMax")
    if method is Method.percentile:
        extra["CalibPercentile"] = 99.999
    extra["TensorQuantOverrides"] = input_range_overrides(prepared)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT's "consider pre-processing" warnings (we do pre-process)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # ORT's calibrators print progress
            quantize_static(
                str(prepared),
                str(out),
                None if cache.exists() else FaceBatchReader(images, batch),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(settings.op_types),
                per_channel=True,
                reduce_range=False,
                activation_type=act,
                weight_type=weight,
                nodes_to_exclude=list(exclude),
                calibrate_method=calib,
                calibration_cache_path=str(cache),
                extra_options=extra,
            )
    finally:
        root.setLevel(level)


def input_layers(model: Any) -> list[Any]:
    """The weighted nodes that read the graph input (through elementwise ops only): the first conv."""
    producers = {out: n for n in model.graph.node for out in n.output}
    firsts = []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        name, seen = node.input[0], set()
        while name in producers and name not in seen:
            seen.add(name)
            producer = producers[name]
            if producer.op_type in WEIGHTED_OPS:
                break
            name = producer.input[0]
        else:
            if name == INPUT_NAME:
                firsts.append(node)
    return firsts


def input_range_overrides(prepared: Path) -> dict[str, list[dict[str, np.ndarray]]]:
    """Exact ranges for the tensors the first weighted layers read: the normalised input.

    The input's range is known (pixels 0..255, normalised inside the graph), so it is taken from
    the two extreme images instead of calibration: entropy or percentile calibration would clip
    bright pixels, and the first convolution is the layer most sensitive to that.
    """
    import onnx

    model = onnx.load(str(prepared))
    firsts = [n.input[0] for n in input_layers(model)]
    if not firsts:
        return {}
    extremes = np.stack([np.zeros((1, 48, 48)), np.full((1, 48, 48), 255.0)]).astype(np.float32)
    values = {t: [] for t in firsts}  # type: dict[str, list[np.ndarray]]
    graph_outputs = {o.name for o in model.graph.output}
    for t in firsts:
        if t not in graph_outputs and t != INPUT_NAME:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    ort = import_onnxruntime()

    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [t for t in firsts if t != INPUT_NAME]
    outputs = dict(zip(names, sess.run(names, {INPUT_NAME: extremes}), strict=True)) if names else {}
    outputs.update({INPUT_NAME: extremes} if INPUT_NAME in firsts else {})
    for t in firsts:
        values[t].append(outputs[t])
    # ORT wants numpy scalars here (it reads their dtype).
    return {t: [{"rmin": np.array(min(0.0, v[0].min()), dtype=np.float32),
                 "rmax": np.array(max(0.0, v[0].max()), dtype=np.float32)}]
            for t, v in values.items()}


def prepare_for_quantization(model_path: Path, out: Path) -> None:
    """ORT's pre-processing: shape inference and graph clean-up, so every tensor can be quantised."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(model_path), str(out), skip_symbolic_shape=True)


def weighted_nodes(model: Any) -> list[str]:
    """Names of the Conv/Gemm/MatMul nodes: the layers that can be kept in FP32."""
    return [n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS]


def fp32_weighted_nodes(model: Any) -> list[str]:
    """Weighted nodes of a Q/DQ graph whose weight is a float initializer, i.e. not quantised."""
    floats = {t.name for t in model.graph.initializer if t.data_type == 1}
    return [n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS and len(n.input) > 1
            and n.input[1] in floats]


# ---------------------------------------------------------------------------------------------
# Measuring a model: accuracy, agreement, latency


def session(path: str | Path, threads: int | None = None) -> Any:
    ort = import_onnxruntime()

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def predict(path: str | Path, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Top-1 class of each uint8 ``[N,48,48]`` image."""
    sess = session(path)
    preds = [
        sess.run([OUTPUT_NAME], {INPUT_NAME: images[i : i + batch, None].astype(np.float32)})[0].argmax(1)
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def latency_ms(paths: Sequence[str | Path], threads: int = 2, runs: int = 300, rounds: int = 5,
               warmup: int = 30, image: np.ndarray | None = None) -> list[float]:
    """Median batch-1 latency (ms) of each model, measured in interleaved rounds.

    Interleaving spreads background load over all models alike; the reported figure is the
    lowest of the per-round medians (the least-disturbed round).
    """
    import time

    from fer_edge.export import generated_faces

    # A fixed face-like image (the latency of these kernels does not depend on the values).
    x = generated_faces(4, seed=1)[2:3, None].astype(np.float32) if image is None else image
    sessions = [session(p, threads) for p in paths]
    for s in sessions:
        for _ in range(warmup):
            s.run(None, {INPUT_NAME: x})
    best = [float("inf")] * len(sessions)
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            times = np.empty(per_round)
            for j in range(per_round):
                t0 = time.perf_counter()
                s.run(None, {INPUT_NAME: x})
                times[j] = time.perf_counter() - t0
            best[i] = min(best[i], float(np.median(times)) * 1000)
    return best


@dataclass
class QuantReport:
    target: str
    method: str
    calibration_images: int
    eval_split: str
    eval_images: int
    fp32_accuracy: float
    int8_accuracy: float
    agreement: float
    fp32_bytes: int
    int8_bytes: int
    fp32_latency_ms: float | None = None
    int8_latency_ms: float | None = None
    fp32_layers: list[str] = field(default_factory=list)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    rule_violations: list[str] = field(default_factory=list)

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.fp32_accuracy - self.int8_accuracy)

    @property
    def size_ratio(self) -> float:
        return self.int8_bytes / self.fp32_bytes

    @property
    def speedup(self) -> float | None:
        if self.fp32_latency_ms and self.int8_latency_ms:
            return self.fp32_latency_ms / self.int8_latency_ms
        return None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "drop_points": self.drop_points, "size_ratio": self.size_ratio,
                "speedup": self.speedup}


# ---------------------------------------------------------------------------------------------
# The whole command


@dataclass
class QuantJob:
    model: Path
    out: Path
    calib_images: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    target: Target = Target.tensorrt
    method: Method = Method.entropy
    max_drop: float = DEFAULT_MAX_DROP
    calibration_info: dict[str, Any] = field(default_factory=dict)
    eval_split: str = "PublicTest"
    measure_latency: bool = True


def check_fp32_input(model_path: Path) -> Any:
    """The FP32 model, after checking it is a fer-edge model that is not already quantised."""
    proto = load_onnx(model_path)
    problems = contract_violations(proto)
    if problems:
        raise FerEdgeError(f"not a fer-edge model: {problems[0]}", path=model_path)
    if is_quantized(proto):
        raise FerEdgeError("is already quantised; quantise the FP32 model", path=model_path)
    return proto


def finish_model(candidate: Path, fp32_meta: dict[str, str], job: QuantJob,
                 fp32_layers: list[str]) -> list[str]:
    """Write the contract metadata into ``candidate`` and check it; returns TensorRT rule violations."""
    import onnx

    from fer_edge.onnx_rules import tensorrt_violations

    proto = onnx.load(str(candidate))
    calibration = {
        **job.calibration_info,
        "method": job.method.value,
        "target": job.target.value,
        "images": int(len(job.calib_images)),
        "fp32_layers": fp32_layers,
    }
    del proto.metadata_props[:]
    set_metadata(proto, {**fp32_meta, "precision": "int8", "quant_target": job.target.value,
                         "calibration": json.dumps(calibration, separators=(",", ":"))})
    proto.producer_name = "fer-edge"
    # The quantiser declares every domain ORT knows; keep only those the graph uses.
    used = {n.domain for n in proto.graph.node} | {""}
    kept = [o for o in proto.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    onnx.checker.check_model(proto)
    problems = contract_violations(proto)
    if problems:
        raise FerEdgeError("quantised model breaks the contract: " + "; ".join(problems), path=job.out)
    onnx.save(proto, str(candidate))
    return tensorrt_violations(proto) if job.target is Target.tensorrt else []


def run_quantization(job: QuantJob, progress: PROGRESS | None = None) -> QuantReport:
    """Quantise ``job.model`` into ``job.out``, keeping layers in FP32 until within ``max_drop``."""
    say = progress or (lambda _msg: None)
    import_onnxruntime()  # before any work: one line naming the extra when it is missing
    fp32 = check_fp32_input(job.model)
    fp32_meta = get_metadata(fp32)
    if len(job.calib_images) == 0:
        raise FerEdgeError("calibration set has no images")
    # Equal-sized batches: a set with no usable divisor loses its last few images (say so).
    usable = len(job.calib_images) - len(job.calib_images) % calibration_batch(len(job.calib_images))
    if usable < len(job.calib_images):
        say(f"calibrating on {usable} of {len(job.calib_images)} images (equal-sized batches)")
        job.calib_images = job.calib_images[:usable]
    if len(job.eval_images) == 0:
        raise FerEdgeError(f"{job.eval_split} has no images to measure accuracy on")

    with tempfile.TemporaryDirectory(prefix="fer-edge-quant-") as tmpdir:
        tmp = Path(tmpdir)
        prepared = tmp / "prepared.onnx"
        say("pre-processing the FP32 graph")
        try:
            prepare_for_quantization(job.model, prepared)
        except Exception as exc:
            raise FerEdgeError(f"ONNX Runtime cannot pre-process this model ({exc})",
                               path=job.model) from None

        say(f"evaluating FP32 on {job.eval_split} ({len(job.eval_images)} images)")
        fp32_pred = predict(job.model, job.eval_images)
        fp32_acc = float(np.mean(fp32_pred == job.eval_labels))

        def attempt(exclude: Sequence[str], name: str, method: Method | None = None) -> tuple[Path, float, float]:
            out = tmp / f"{name}.onnx"
            method = method or job.method
            cache = tmp / f"calibration.{method.value}.json"  # one calibration per method
            quantize_once(prepared, out, job.calib_images, job.target, method, cache, exclude)
            pred = predict(out, job.eval_images)
            return out, float(np.mean(pred == job.eval_labels)), float(np.mean(pred == fp32_pred))

        n_calib = len(job.calib_images)
        say(f"calibrating ({job.method.value}, {n_calib} images) and quantising for {job.target.value}")
        # The first convolution stays FP32: one input channel, 0.3% of the multiply-adds, yet it
        # caused most of the INT8 error of the trained models (and ORT's int8 kernel is slower
        # than its FP32 one at one input channel). Its output is quantised at the next layer.
        prepared_model = load_onnx(prepared, load_external_data=False)
        always_fp32 = [n.name for n in input_layers(prepared_model)]
        best, int8_acc, agreement = attempt(always_fp32, "int8")
        kept: list[str] = list(always_fp32)
        sensitivity: list[dict[str, Any]] = []
        method = job.method
        if 100.0 * (fp32_acc - int8_acc) > job.max_drop:
            # Another calibration method often passes with every layer in INT8, and a layer kept in
            # FP32 costs far more time than a different calibration costs accuracy (the FER2013
            # tensorrt model: entropy missed the bound by 0.001 points and kept two convs in FP32,
            # 1.38 vs 0.84 ms; percentile passed with all five in INT8). Try them first.
            for other in fallback_methods(job.method):
                candidate, acc, agree = attempt(always_fp32, f"int8-{other.value}", other)
                drop = 100.0 * (fp32_acc - acc)
                say(f"{other.value} calibration, all layers INT8: accuracy {acc:.2%} ({drop:.2f} points)")
                if drop <= job.max_drop:
                    best, int8_acc, agreement, method = candidate, acc, agree, other
                    break
        if 100.0 * (fp32_acc - int8_acc) > job.max_drop:
            drop = 100 * (fp32_acc - int8_acc)
            say(f"INT8 loses {drop:.2f} points (> {job.max_drop}): per-layer sensitivity analysis")
            layers = [n for n in weighted_nodes(prepared_model) if n not in always_fp32]
            for i, layer in enumerate(layers):
                _, acc, agree = attempt([*always_fp32, layer], f"sens{i}")
                sensitivity.append({"layer": layer, "accuracy_fp32_layer": acc, "agreement": agree})
                say(f"  {layer} in FP32: accuracy {acc:.2%}, agreement {agree:.2%}")
            # Rank by top-1 agreement with FP32 first: on a few thousand test images it is a
            # steadier measure of a layer's quantisation error than accuracy, which moves by
            # single images (accuracy breaks ties).
            ranked = sorted(sensitivity, key=lambda s: (-s["agreement"], -s["accuracy_fp32_layer"]))
            for step, entry in enumerate(ranked):
                kept.append(entry["layer"])
                best, int8_acc, agreement = attempt(kept, f"keep{step}")
                say(f"  FP32 layers {kept}: accuracy {int8_acc:.2%}")
                if 100.0 * (fp32_acc - int8_acc) <= job.max_drop:
                    break
            else:
                raise FerEdgeError(
                    f"INT8 stays more than {job.max_drop} points below FP32 even with every layer in FP32; "
                    "nothing written", path=job.out)
        actually_fp32 = fp32_weighted_nodes(load_onnx(best))
        job.method = method  # the method the written model was calibrated with
        violations = finish_model(best, fp32_meta, job, actually_fp32)
        if violations:  # our own tensorrt layout broke a rule: a bug, never write it
            raise FerEdgeError(f"INT8 model breaks {len(violations)} TensorRT rule(s): {violations[0]}",
                               path=job.out)
        report = QuantReport(
            target=job.target.value,
            method=job.method.value,
            calibration_images=len(job.calib_images),
            eval_split=job.eval_split,
            eval_images=len(job.eval_images),
            fp32_accuracy=fp32_acc,
            int8_accuracy=int8_acc,
            agreement=agreement,
            fp32_bytes=job.model.stat().st_size,
            int8_bytes=best.stat().st_size,
            fp32_layers=actually_fp32,
            sensitivity=sensitivity,
        )
        if job.measure_latency:
            say("measuring CPU latency (ONNX Runtime, batch 1, 2 threads)")
            report.fp32_latency_ms, report.int8_latency_ms = latency_ms([job.model, best], runs=200, rounds=4)
        with atomic_path(job.out) as final:
            final.write_bytes(best.read_bytes())
    return report
