"""Calibration and one ``quantize_static`` call with ONNX Runtime's quantiser.

Calibration ranges are computed once per method and cached, so the per-layer sensitivity
analysis of the accuracy guard only re-quantises (it does not re-calibrate).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.build.quantize.settings import TARGETS, WEIGHTED_OPS, Method, Target, calibration_batch
from fer_edge.model.onnx_contract import INPUT_NAME


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
    from fer_edge.runtime.ort_session import cpu_session

    sess = cpu_session(model.SerializeToString())
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

