"""YuNet on fer-edge's backends: input padding, vectorised decoding of the per-stride outputs, NMS.

The OpenCV Zoo YuNet (2023mar network; the file with a dynamic HxW input) has twelve outputs,
``cls_S``, ``obj_S``, ``bbox_S`` and ``kps_S`` for the strides S = 8, 16, 32, each shaped
``[1, rows * cols, k]`` over the grid of the input padded to a multiple of 32. This module turns
them into faces exactly as ``cv2.FaceDetectorYN`` does (same formulas, same NMS from OpenCV), so
the model can run on ONNX Runtime (CPU, CUDA, TensorRT provider) or a TensorRT engine instead of
OpenCV DNN on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Protocol

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.optional import import_cv2
from fer_edge.runtime.runner import Runner

STRIDES: tuple[int, ...] = (8, 16, 32)
DIVISOR = 32  # YuNet's largest stride: the input is padded to a multiple of it
# Channels per grid cell of each output family: score, score, (dx, dy, log w, log h), 5 (x, y).
OUTPUT_WIDTHS: dict[str, int] = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}
OUTPUT_NAMES: tuple[str, ...] = tuple(f"{kind}_{s}" for kind in OUTPUT_WIDTHS for s in STRIDES)
FIX_HINT = (
    "pass the OpenCV Zoo YuNet (fer-edge fetch-detector downloads it) or a TensorRT engine "
    "built from it"
)

Outputs = Dict[str, np.ndarray]


class YuNetRunner(Protocol):
    """Runs the YuNet network on a float32 ``[1, 3, H, W]`` BGR blob; returns its named outputs.

    ``last_latency_ms`` / ``last_gpu_ms``: the last call's wall and device time (None before the
    first call, and for device time where the runtime has no CUDA events).
    """

    name: str
    path: Path

    @property
    def last_latency_ms(self) -> float | None: ...

    @property
    def last_gpu_ms(self) -> float | None: ...

    def run(self, blob: np.ndarray) -> Outputs: ...

    def close(self) -> None: ...


@dataclass
class Faces:
    boxes: np.ndarray  # float32 [N, 4]: x, y, w, h in input pixels
    landmarks: np.ndarray  # float32 [N, 5, 2]: right eye, left eye, nose tip, mouth right, mouth left
    scores: np.ndarray  # float32 [N]


def padded_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) rounded up to YuNet's stride of 32."""
    return (-(-width // DIVISOR) * DIVISOR, -(-height // DIVISOR) * DIVISOR)


def to_blob(image_bgr: np.ndarray) -> np.ndarray:
    """The network input: BGR pixel values as float32 ``[1, 3, H', W']``, zero-padded at the right
    and bottom to a multiple of 32 (as OpenCV's FaceDetectorYN pads), so boxes need no shift.

    OpenCV builds it (``blobFromImage``: no scaling, no mean, no channel swap), not numpy: half the
    time of zeroing and filling a fresh array, and without holding the GIL, so the detector passes
    of several cameras on worker threads do not queue behind it."""
    cv2 = import_cv2()
    if image_bgr.ndim == 2:
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    h, w = image_bgr.shape[:2]
    pw, ph = padded_size(w, h)
    if (pw, ph) != (w, h):
        image_bgr = cv2.copyMakeBorder(image_bgr, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=0)
    return np.asarray(cv2.dnn.blobFromImage(image_bgr), np.float32)


def check_outputs(outputs: Outputs, blob_shape: tuple[int, ...], path: Path | str) -> None:
    """Refuse outputs that are not YuNet's per-stride layout for this input size."""
    ph, pw = blob_shape[2], blob_shape[3]
    missing = [n for n in OUTPUT_NAMES if n not in outputs]
    if missing:
        raise FerEdgeError(
            f"not a YuNet detector: outputs {sorted(outputs)} lack {missing}; {FIX_HINT}", path=path
        )
    for kind, width in OUTPUT_WIDTHS.items():
        for s in STRIDES:
            cells = (ph // s) * (pw // s)
            got = np.shape(outputs[f"{kind}_{s}"])
            if int(np.prod(got)) != cells * width:
                raise FerEdgeError(
                    f"YuNet output {kind}_{s} is shaped {list(got)}, expected [1, {cells}, {width}] for a "
                    f"{pw}x{ph} input (another YuNet release or layout?); {FIX_HINT}",
                    path=path,
                )


def decode(
    outputs: Outputs,
    input_size: tuple[int, int],
    score_threshold: float = 0.7,
    nms_threshold: float = 0.3,
    top_k: int = 5000,
) -> Faces:
    """Faces from YuNet's outputs for a padded ``input_size`` (W, H): OpenCV's formulas, vectorised.

    score = sqrt(clip(cls) * clip(obj)); centre = (cell + offset) * stride; size = exp(.) * stride;
    landmarks = (cell + offset) * stride; then OpenCV's NMS (``cv2.dnn.NMSBoxes``).
    """
    pw, ph = input_size
    boxes, marks, scores = [], [], []
    for s in STRIDES:
        cols, rows = pw // s, ph // s
        cls = np.clip(np.asarray(outputs[f"cls_{s}"], np.float32).reshape(-1), 0.0, 1.0)
        obj = np.clip(np.asarray(outputs[f"obj_{s}"], np.float32).reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.nonzero(score >= score_threshold)[0]
        if not len(keep):
            continue
        cell = np.stack([keep % cols, keep // cols], axis=1).astype(np.float32)  # (c, r)
        bbox = np.asarray(outputs[f"bbox_{s}"], np.float32).reshape(rows * cols, 4)[keep]
        kps = np.asarray(outputs[f"kps_{s}"], np.float32).reshape(rows * cols, 5, 2)[keep]
        centre = (cell + bbox[:, :2]) * s
        size = np.exp(bbox[:, 2:]) * s
        boxes.append(np.concatenate([centre - size / 2, size], axis=1))
        marks.append((kps + cell[:, None, :]) * s)
        scores.append(score[keep])
    if not boxes:
        return Faces(np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.float32))
    all_boxes = np.concatenate(boxes)
    all_scores = np.concatenate(scores)
    cv2 = import_cv2()
    kept = np.asarray(
        cv2.dnn.NMSBoxes(all_boxes.tolist(), all_scores.tolist(), score_threshold, nms_threshold, 1.0, top_k),
        dtype=np.int64,
    ).reshape(-1)
    return Faces(
        all_boxes[kept].astype(np.float32),
        np.concatenate(marks)[kept].astype(np.float32),
        all_scores[kept].astype(np.float32),
    )


def check_yunet_file(path: Path) -> None:
    """Raise one line unless ``path`` is a YuNet ONNX (3-channel image in, the 12 outputs out).

    Reads the graph only (protobuf, no code runs); a fer-edge classifier passed by mistake, or a
    YuNet release with another output layout, is refused here rather than on the first frame.
    """
    from fer_edge.model.onnx_contract import load_onnx

    model = load_onnx(path, load_external_data=False)
    outputs = {o.name for o in model.graph.output}
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    channels = None
    if len(inputs) == 1:
        dims = inputs[0].type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels = dims[1].dim_value
    if channels != 3 or not set(OUTPUT_NAMES) <= outputs:
        raise FerEdgeError(
            "not a YuNet face detector (expected a 3-channel image input and the outputs "
            f"{', '.join(OUTPUT_NAMES[:4])}, ... {OUTPUT_NAMES[-1]}; found {sorted(outputs)}); {FIX_HINT}",
            path=path,
        )


def static_input_size(path: Path) -> tuple[int, int] | None:
    """(W, H) when the ONNX input has fixed spatial dims (the original 2023mar file: 640x640)."""
    from fer_edge.model.onnx_contract import load_onnx

    dims = load_onnx(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    if len(dims) == 4 and dims[2].HasField("dim_value") and dims[3].HasField("dim_value"):
        return int(dims[3].dim_value), int(dims[2].dim_value)
    return None


class RunnerAdapter:
    """What a YuNet adapter hands on from its runner: the last inference's timing, and closing."""

    runner: Runner

    @property
    def last_latency_ms(self) -> float | None:
        return self.runner.last_latency_ms

    @property
    def last_gpu_ms(self) -> float | None:
        return self.runner.last_gpu_ms

    def close(self) -> None:
        self.runner.deactivate()


class OrtYuNet(RunnerAdapter):
    """YuNet on ONNX Runtime (CPU, CUDA or the TensorRT execution provider): the detector's
    adapter over the runner the classifier uses, with the same provider choice and errors.

    The TensorRT EP gets YuNet's own options: FP32, no profile shapes (the classifier's
    ``input:1x1x48x48 ...`` profile names a tensor YuNet also calls ``input``, shaped [1,3,H,W]);
    the EP builds for the camera's size on the first frame and caches the engine.
    """

    def __init__(self, path: Path, device: str = "auto", threads: int | None = None) -> None:
        from fer_edge.runtime.ort_runner import OnnxRuntimeRunner, provider_options
        from fer_edge.runtime.ort_session import import_onnxruntime

        import_onnxruntime()  # one line naming the extra when it is missing

        check_yunet_file(path)
        fixed = static_input_size(path)
        if fixed is not None:
            raise FerEdgeError(
                f"this YuNet file has a fixed {fixed[0]}x{fixed[1]} input (the original 2023mar export), which "
                "ONNX Runtime cannot run at the camera's size; use the dynamic-size re-export of the same "
                "network (fer-edge fetch-detector), or --detector-device opencv",
                path=path,
            )
        self.path = path
        self.runner = OnnxRuntimeRunner(path, device, threads, what="detector",
                                        options_for=lambda p: provider_options(p, "fp32", None))
        self.runner.activate()  # a detector that cannot load fails before the first frame
        self.name = self.runner.name
        self._input = self.runner.inputs[0].name

    def run(self, blob: np.ndarray) -> Outputs:
        return self.runner.infer({self._input: blob})
