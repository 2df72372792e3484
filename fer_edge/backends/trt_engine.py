"""TensorRT backend: a ``.engine`` built by ``fer-edge build-engine``, run with CUDA buffers.

Before TensorRT sees the file, the sidecar is checked (present, matching the engine's bytes,
built with this TensorRT on this GPU), so a wrong engine is a one-line error, not a crash.
Inference: pinned host buffers, one CUDA stream, async host→device copy, ``execute_async_v3``,
async device→host copy, stream sync. Buffers are sized for the profile's max batch; larger
batches run in chunks, and a static engine's short batches are zero-padded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.backends.base import Backend
from fer_edge.errors import FerEdgeError
from fer_edge.trt.profile import BatchProfile, chunks_for, profile_from_shapes
from fer_edge.trt.sidecar import (
    DeviceInfo,
    Sidecar,
    board_model_here,
    check_device,
    check_engine_file,
    read_sidecar,
    sidecar_metadata,
)


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
        self._cuda: Any = None
        self._loaded: Any = None
        self._stream: Any = None
        self._input: Any = None
        self._output: Any = None
        self._events: tuple[Any, Any] | None = None
        self._input_name = sidecar.input_name
        self._output_name = sidecar.output_name

    def activate_impl(self) -> None:
        from fer_edge.trt import tensorrt_api
        from fer_edge.trt.cuda_mem import HostDeviceMem, load_cuda_api

        cuda = self._cuda = load_cuda_api(self.device_index, self.binding)
        try:
            loaded = self._loaded = tensorrt_api.deserialize(self.path.read_bytes(), self.path)
            inputs, outputs = tensorrt_api.io_tensors(loaded.engine)
            if inputs != [self._input_name] or outputs != [self._output_name]:
                raise FerEdgeError(f"engine tensors {inputs} -> {outputs} do not match the sidecar's "
                                   f"{self._input_name!r} -> {self._output_name!r}", path=self.path)
            in_dtype = tensorrt_api.tensor_numpy_dtype(loaded.engine, self._input_name)
            out_dtype = tensorrt_api.tensor_numpy_dtype(loaded.engine, self._output_name)
            rows = self.profile.max
            self._input = HostDeviceMem(cuda, rows * 48 * 48, in_dtype)
            self._output = HostDeviceMem(cuda, rows * self.num_classes, out_dtype)
            self._stream = cuda.stream_create()
            self._events = (cuda.event_create(), cuda.event_create())
            # Device pointers never move, so the addresses are set once.
            tensorrt_api.set_tensor_address(loaded.context, self._input_name, self._input.device)
            tensorrt_api.set_tensor_address(loaded.context, self._output_name, self._output.device)
        except BaseException:
            self.deactivate_impl()  # free whatever was allocated before the failure
            raise

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        from fer_edge.trt import tensorrt_api

        cuda, context = self._cuda, self._loaded.context
        pixels = 48 * 48
        logits = np.empty((batch.shape[0], self.num_classes), dtype=np.float32)
        assert self._events is not None
        begin, end = self._events
        cuda.event_record(begin, self._stream)
        for start, stop, rows in chunks_for(batch.shape[0], self.profile):
            n = stop - start
            host_in = self._input.host
            host_in[: n * pixels] = batch[start:stop].reshape(-1)
            if rows > n:
                host_in[n * pixels: rows * pixels] = 0  # padding rows of a static engine
            tensorrt_api.set_input_shape(context, self._input_name, (rows, 1, 48, 48))
            self._input.to_device_async(self._stream, rows * pixels)
            tensorrt_api.execute_async(context, cuda.stream_handle(self._stream))
            self._output.to_host_async(self._stream, rows * self.num_classes)
            cuda.stream_sync(self._stream)
            logits[start:stop] = self._output.host[: n * self.num_classes].reshape(n, self.num_classes)
        cuda.event_record(end, self._stream)
        self.last_gpu_ms = cuda.event_elapsed_ms(begin, end)
        return logits

    def deactivate_impl(self) -> None:
        cuda = self._cuda
        for buffer in (self._input, self._output):
            if buffer is not None:
                buffer.free()
        if cuda is not None and self._events is not None:
            for event in self._events:
                cuda.event_destroy(event)
        self._events = None
        if cuda is not None and self._stream is not None:
            cuda.stream_destroy(self._stream)
        self._input = self._output = self._stream = None
        self._loaded = None  # context, engine, runtime go before the CUDA context does
        if cuda is not None:
            cuda.close()
        self._cuda = None


def device_here(device_index: int = 0) -> DeviceInfo:
    from fer_edge.trt.cuda_mem import load_cuda_api
    from fer_edge.trt.tensorrt_api import require_tensorrt

    version = require_tensorrt()
    cuda = load_cuda_api(device_index)
    try:
        name, capability = cuda.device_info()
        sm_count = cuda.multiprocessor_count()
    finally:
        cuda.close()
    return DeviceInfo(version, name, capability, sm_count=sm_count, board_model=board_model_here())


def open_engine(path: str | Path, device_index: int = 0) -> TensorRTBackend:
    """Check the sidecar, the engine bytes and this machine's TensorRT/GPU; activate later."""
    path = Path(path)
    sidecar = read_sidecar(path)
    check_engine_file(path, sidecar)
    check_device(path, sidecar, device_here(device_index))
    return TensorRTBackend(path, sidecar, device_index)
