"""TensorRT backend: the classifier's adapter over :class:`~fer_edge.runtime.trt_runner.TensorRTRunner`.

The runner owns the sidecar checks, the shared CUDA context, the buffers and the stream; this adds
the classifier's contract: buffers for the profile's max batch, batches split into profile-sized
chunks (a static engine's short chunks zero-padded), logits out. Device time is the sum of the
chunks' device times, so the host work between chunks is not counted as GPU time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.engine_sidecar import DeviceInfo, Sidecar, sidecar_metadata
from fer_edge.runtime.classifier_base import Backend
from fer_edge.runtime.engine_profile import BatchProfile, chunks_for, profile_from_shapes
from fer_edge.runtime.trt_runner import TensorRTRunner, checked_sidecar
from fer_edge.runtime.trt_runner import device_here as _device_here

PIXELS = 48 * 48


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self, path: str | Path, sidecar: Sidecar, device_index: int = 0, binding: str = "auto"
    ) -> None:
        labels = tuple(sidecar.labels)
        super().__init__(path, labels, sidecar.dataset, sidecar_metadata(sidecar), sidecar.precision)
        self.sidecar = sidecar
        self.profile: BatchProfile = profile_from_shapes(sidecar.profile)
        self.device_index = device_index
        self.binding = binding
        self._input_name = sidecar.input_name
        self._output_name = sidecar.output_name
        self.runner = TensorRTRunner(path, sidecar, self._plan_buffers, device_index, binding)

    def _plan_buffers(self, inputs: list[str], outputs: list[str]) -> dict[str, int]:
        if inputs != [self._input_name] or outputs != [self._output_name]:
            raise FerEdgeError(f"engine tensors {inputs} -> {outputs} do not match the sidecar's "
                               f"{self._input_name!r} -> {self._output_name!r}", path=self.path)
        rows = self.profile.max
        return {self._input_name: rows * PIXELS, self._output_name: rows * self.num_classes}

    def activate_impl(self) -> None:
        self.runner.activate()

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        logits = np.empty((batch.shape[0], self.num_classes), dtype=np.float32)
        gpu_ms = 0.0
        for start, stop, rows in chunks_for(batch.shape[0], self.profile):
            chunk = batch[start:stop]
            if rows > len(chunk):  # padding rows of a static engine
                chunk = np.concatenate([chunk, np.zeros((rows - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            out = self.runner.infer({self._input_name: chunk})[self._output_name]
            logits[start:stop] = out.reshape(rows, self.num_classes)[: stop - start]
            gpu_ms += self.runner.last_gpu_ms or 0.0
        self.last_gpu_ms = gpu_ms
        return logits

    def deactivate_impl(self) -> None:
        self.runner.deactivate()


def device_here(device_index: int = 0) -> DeviceInfo:
    """This machine's TensorRT version and GPU (tests replace it here)."""
    return _device_here(device_index)


def open_engine(path: str | Path, device_index: int = 0) -> TensorRTBackend:
    """Check the sidecar, the engine bytes and this machine's TensorRT/GPU; activate later."""
    path = Path(path)
    sidecar = checked_sidecar(path, device_index, here=device_here)
    return TensorRTBackend(path, sidecar, device_index)
