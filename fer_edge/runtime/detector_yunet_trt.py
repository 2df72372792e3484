"""YuNet as a TensorRT engine (``fer-edge build-engine YUNET.onnx --detector WxH``): the detector
on the GPU beside the classifier, so a Jetson's ARM cores are left to decoding the video.

The detector's adapter over :class:`~fer_edge.runtime.trt_runner.TensorRTRunner` (the classifier's
runner, on the same CUDA context). Checked before TensorRT is touched: the sidecar (present,
matching the engine's bytes, this TensorRT and GPU, and a detector's, not a classifier's); each
new frame size against the engine's HxW profile. Buffers are sized for the profile's largest input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.engine_sidecar import Sidecar
from fer_edge.runtime.detector_profile import DETECTOR_KIND, DetectorProfile, check_frame_size, profile_from_sidecar
from fer_edge.runtime.detector_yunet import (
    FIX_HINT,
    OUTPUT_NAMES,
    OUTPUT_WIDTHS,
    STRIDES,
    Outputs,
    RunnerAdapter,
)
from fer_edge.runtime.trt_runner import TensorRTRunner, checked_sidecar


def output_sizes(width: int, height: int) -> dict[str, int]:
    """Elements of each YuNet output for a padded ``width`` x ``height`` input."""
    return {
        f"{kind}_{s}": (width // s) * (height // s) * channels
        for kind, channels in OUTPUT_WIDTHS.items()
        for s in STRIDES
    }


def check_detector_sidecar(sidecar: Sidecar, path: Path) -> DetectorProfile:
    if sidecar.dataset != DETECTOR_KIND:
        raise FerEdgeError(
            f"this engine is a classifier ({sidecar.dataset}), not a YuNet detector; pass it as --model, and "
            f"as --detector-model an engine from build-engine YUNET.onnx --detector WxH ({FIX_HINT})",
            path=path,
        )
    return profile_from_sidecar(sidecar.profile, path)


class TrtYuNet(RunnerAdapter):
    """Runs a YuNet engine; the engine loads on the first frame."""

    runner: TensorRTRunner

    name = "tensorrt"

    def __init__(self, path: Path, sidecar: Sidecar, device_index: int = 0) -> None:
        self.path = path
        self.sidecar = sidecar
        self.profile = check_detector_sidecar(sidecar, path)
        self.device_index = device_index
        self.runner = TensorRTRunner(path, sidecar, self._plan_buffers, device_index)
        self._checked: tuple[int, ...] | None = None

    def _plan_buffers(self, inputs: list[str], outputs: list[str]) -> dict[str, int]:
        if len(inputs) != 1 or not set(OUTPUT_NAMES) <= set(outputs):
            raise FerEdgeError(f"engine tensors {inputs} -> {outputs} are not YuNet's; {FIX_HINT}",
                               path=self.path)
        max_w, max_h = self.profile.max
        return {inputs[0]: 3 * max_w * max_h, **output_sizes(max_w, max_h)}

    def run(self, blob: np.ndarray) -> Outputs:
        if self._checked != blob.shape:
            check_frame_size(self.profile, int(blob.shape[3]), int(blob.shape[2]), self.path)
            self._checked = tuple(blob.shape)
        if not self.runner.is_active:
            self.runner.activate()
        outputs = self.runner.infer({self.runner.input_names[0]: blob})
        return {name: np.asarray(value, dtype=np.float32).reshape(-1) for name, value in outputs.items()
                if name in OUTPUT_NAMES}



def open_yunet_engine(path: Path, device_index: int = 0) -> TrtYuNet:
    """Check the sidecar, the bytes and this machine's TensorRT/GPU; the engine loads on first use."""
    sidecar = checked_sidecar(path, device_index, check_kind=check_detector_sidecar)
    return TrtYuNet(path, sidecar, device_index)
