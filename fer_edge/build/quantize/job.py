"""The ``fer-edge quantize`` job: calibrate, quantise, guard the accuracy, write the INT8 model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.build.quantize.calibrate import (
    fp32_weighted_nodes,
    input_layers,
    prepare_for_quantization,
    quantize_once,
    weighted_nodes,
)
from fer_edge.build.quantize.measure import QuantReport, latency_ms, predict
from fer_edge.build.quantize.settings import (
    DEFAULT_MAX_DROP,
    PROGRESS,
    Method,
    Target,
    calibration_batch,
    fallback_methods,
)
from fer_edge.build.quantize.workspace import quantize_workspace
from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.onnx_contract import contract_violations, get_metadata, is_quantized, load_onnx, set_metadata


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

    from fer_edge.build.qdq_rules import placement_warnings, tensorrt_violations

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
    if job.target is not Target.tensorrt:
        return []
    # Placement against NVIDIA's guidance builds, but slower: for our own layout it is a bug too.
    return tensorrt_violations(proto) + placement_warnings(proto)


def run_quantization(job: QuantJob, progress: PROGRESS | None = None) -> QuantReport:
    """Quantise ``job.model`` into ``job.out``, keeping layers in FP32 until within ``max_drop``."""
    say = progress or (lambda _msg: None)
    from fer_edge.runtime.ort_session import import_onnxruntime

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

    with quantize_workspace() as tmp:
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
