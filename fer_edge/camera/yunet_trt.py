"""YuNet as a TensorRT engine (``fer-edge build-engine YUNET.onnx --detector WxH``): the detector
on the GPU beside the classifier, so a Jetson's ARM cores are left to decoding the video.

Checked before TensorRT is touched: the sidecar (present, matching the engine's bytes, this
TensorRT and GPU, and a detector's, not a classifier's); each new frame size against the
engine's HxW profile. Buffers are sized for the profile's largest input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.camera.yunet import FIX_HINT, OUTPUT_NAMES, OUTPUT_WIDTHS, STRIDES, Outputs
from fer_edge.errors import FerEdgeError
from fer_edge.trt.detector_profile import DETECTOR_KIND, DetectorProfile, check_frame_size, profile_from_sidecar
from fer_edge.trt.sidecar import Sidecar


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


class TrtYuNet:
    """Runs a YuNet engine: pinned host buffers, one stream, async copies, ``execute_async_v3``."""

    name = "tensorrt"

    def __init__(self, path: Path, sidecar: Sidecar, device_index: int = 0) -> None:
        self.path = path
        self.sidecar = sidecar
        self.profile = check_detector_sidecar(sidecar, path)
        self.device_index = device_index
        self._cuda: Any = None
        self._loaded: Any = None
        self._stream: Any = None
        self._buffers: dict[str, Any] = {}
        self._shape: tuple[int, ...] | None = None

    def _activate(self) -> None:
        from fer_edge.trt import tensorrt_api
        from fer_edge.trt.cuda_mem import HostDeviceMem, load_cuda_api

        cuda = self._cuda = load_cuda_api(self.device_index)
        try:
            loaded = self._loaded = tensorrt_api.deserialize(self.path.read_bytes(), self.path)
            inputs, outputs = tensorrt_api.io_tensors(loaded.engine)
            if len(inputs) != 1 or not set(OUTPUT_NAMES) <= set(outputs):
                raise FerEdgeError(f"engine tensors {inputs} -> {outputs} are not YuNet's; {FIX_HINT}",
                                   path=self.path)
            max_w, max_h = self.profile.max
            sizes = {inputs[0]: 3 * max_w * max_h, **output_sizes(max_w, max_h)}
            for name, count in sizes.items():
                dtype = tensorrt_api.tensor_numpy_dtype(loaded.engine, name)
                self._buffers[name] = HostDeviceMem(cuda, count, dtype)
                tensorrt_api.set_tensor_address(loaded.context, name, self._buffers[name].device)
            self._input = inputs[0]
            self._stream = cuda.stream_create()
        except BaseException:
            self.close()
            raise

    def run(self, blob: np.ndarray) -> Outputs:
        from fer_edge.trt import tensorrt_api

        height, width = int(blob.shape[2]), int(blob.shape[3])
        if self._shape != blob.shape:
            check_frame_size(self.profile, width, height, self.path)
        if self._loaded is None:
            self._activate()
        context = self._loaded.context
        if self._shape != blob.shape:
            tensorrt_api.set_input_shape(context, self._input, tuple(blob.shape))
            self._shape = tuple(blob.shape)
        source = self._buffers[self._input]
        count = blob.size
        source.host[:count] = blob.reshape(-1)
        source.to_device_async(self._stream, count)
        tensorrt_api.execute_async(context, self._cuda.stream_handle(self._stream))
        sizes = output_sizes(width, height)
        for name, n in sizes.items():
            self._buffers[name].to_host_async(self._stream, n)
        self._cuda.stream_sync(self._stream)
        return {name: np.array(self._buffers[name].host[:n], dtype=np.float32) for name, n in sizes.items()}

    def close(self) -> None:
        for buffer in self._buffers.values():
            buffer.free()
        self._buffers = {}
        if self._cuda is not None and self._stream is not None:
            self._cuda.stream_destroy(self._stream)
        self._stream = None
        self._loaded = None  # context and engine go before the CUDA context does
        if self._cuda is not None:
            self._cuda.close()
        self._cuda = None


def open_yunet_engine(path: Path, device_index: int = 0) -> TrtYuNet:
    """Check the sidecar, the bytes and this machine's TensorRT/GPU; the engine loads on first use."""
    from fer_edge.backends.trt_engine import device_here
    from fer_edge.trt.sidecar import check_device, check_engine_file, read_sidecar

    sidecar = read_sidecar(path)
    check_detector_sidecar(sidecar, path)
    check_engine_file(path, sidecar)
    check_device(path, sidecar, device_here(device_index))
    return TrtYuNet(path, sidecar, device_index)
