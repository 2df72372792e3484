"""The TensorRT runner: a ``.engine`` on the process's shared CUDA context, named arrays in and out.

Loading: the engine file is checked against its sidecar first (:func:`checked_sidecar`: present,
matching the bytes, this TensorRT and GPU), so a wrong engine is a one-line error, not a crash;
the runtime is put on the sidecar's DLA core before deserialising. Buffers: one pinned host array
and one device buffer per I/O tensor, sized by the adapter for the largest shape it will send,
addresses set once. One call: host copies into pinned memory and shape changes first (host work),
then a CUDA event, the host-to-device copies, ``execute_async_v3``, the device-to-host copies and
a second event, so ``last_gpu_ms`` times device work only and ``last_host_ms`` is the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.engine_sidecar import (
    DeviceInfo,
    Sidecar,
    board_model_here,
    check_device,
    check_engine_file,
    read_sidecar,
)
from fer_edge.runtime.runner import Feed, Outputs, Runner

# (input names, output names) -> elements to allocate per tensor; raises when the tensors are
# not the ones the adapter expects.
BufferPlan = Callable[[List[str], List[str]], Dict[str, int]]


def device_here(device_index: int = 0) -> DeviceInfo:
    """This machine's TensorRT version and GPU (through the shared CUDA context)."""
    from fer_edge.runtime.cuda_context import load_cuda_api
    from fer_edge.runtime.trt_api import require_tensorrt

    version = require_tensorrt()
    cuda = load_cuda_api(device_index)
    try:
        name, capability = cuda.device_info()
        sm_count = cuda.multiprocessor_count()
    finally:
        cuda.close()
    return DeviceInfo(version, name, capability, sm_count=sm_count, board_model=board_model_here())


def checked_sidecar(
    path: Path,
    device_index: int = 0,
    check_kind: Optional[Callable[[Sidecar, Path], Any]] = None,
    here: Optional[Callable[[int], DeviceInfo]] = None,
) -> Sidecar:
    """The sidecar of an engine that this machine can load: read, of the right kind (classifier
    or detector, by ``check_kind``), matching the engine's bytes, built with this TensorRT on
    this GPU. TensorRT is not touched before the device check."""
    sidecar = read_sidecar(path)
    if check_kind is not None:
        check_kind(sidecar, path)
    check_engine_file(path, sidecar)
    check_device(path, sidecar, (here or device_here)(device_index))
    return sidecar


class TensorRTRunner(Runner):
    """Runs a serialized TensorRT engine on named numpy arrays."""

    name = "tensorrt"

    def __init__(self, path: str | Path, sidecar: Sidecar, plan_buffers: BufferPlan,
                 device_index: int = 0, binding: str = "auto") -> None:
        super().__init__(path)
        self.sidecar = sidecar
        self.plan_buffers = plan_buffers
        self.device_index = device_index
        self.binding = binding
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._cuda: Any = None
        self._loaded: Any = None
        self._stream: Any = None
        self._events: tuple[Any, Any] | None = None
        self._buffers: dict[str, Any] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}

    def activate_impl(self) -> None:
        from fer_edge.runtime import trt_api
        from fer_edge.runtime.buffers import HostDeviceMem
        from fer_edge.runtime.cuda_context import load_cuda_api

        cuda = self._cuda = load_cuda_api(self.device_index, self.binding)
        try:
            with cuda.activated():
                loaded = self._loaded = trt_api.deserialize(self.path.read_bytes(), self.path,
                                                            dla_core=self.sidecar.dla_core)
                self.input_names, self.output_names = trt_api.io_tensors(loaded.engine)
                sizes = self.plan_buffers(list(self.input_names), list(self.output_names))
                for name, count in sizes.items():
                    dtype = trt_api.tensor_numpy_dtype(loaded.engine, name)
                    self._buffers[name] = HostDeviceMem(cuda, count, dtype)
                    # Device pointers never move, so the addresses are set once.
                    trt_api.set_tensor_address(loaded.context, name, self._buffers[name].device)
                self._stream = cuda.stream_create()
                self._events = (cuda.event_create(), cuda.event_create())
        except BaseException:
            self.deactivate_impl()  # free whatever was allocated before the failure
            raise

    def infer_impl(self, feed: Feed) -> Outputs:
        from fer_edge.runtime import trt_api

        cuda, context = self._cuda, self._loaded.context
        assert self._events is not None
        begin, end = self._events
        with cuda.activated():
            counts = {}
            for name in self.input_names:
                array = np.asarray(feed[name])
                buffer = self._buffers[name]
                if array.size > buffer.host.size:
                    raise FerEdgeError(f"input {name!r} shaped {list(array.shape)} is larger than the "
                                       f"buffers planned for it ({buffer.host.size} elements)", path=self.path)
                buffer.host[: array.size] = array.reshape(-1)  # host work: before the first event
                counts[name] = int(array.size)
                if self._shapes.get(name) != array.shape:
                    trt_api.set_input_shape(context, name, tuple(array.shape))
                    self._shapes[name] = tuple(array.shape)
            shapes = {name: trt_api.tensor_shape(context, name) for name in self.output_names}
            cuda.event_record(begin, self._stream)  # device work starts with the first copy
            for name, count in counts.items():
                self._buffers[name].to_device_async(self._stream, count)
            trt_api.execute_async(context, cuda.stream_handle(self._stream))
            for name, shape in shapes.items():
                self._buffers[name].to_host_async(self._stream, max(int(np.prod(shape)), 1))
            cuda.event_record(end, self._stream)
            self.last_gpu_ms = cuda.event_elapsed_ms(begin, end)  # waits for the copies back
        return {name: self._buffers[name].host[: int(np.prod(shape))].reshape(shape).copy()
                for name, shape in shapes.items()}

    def deactivate_impl(self) -> None:
        cuda = self._cuda
        if cuda is None:
            return
        try:
            with cuda.activated():
                for buffer in self._buffers.values():
                    buffer.free()
                if self._events is not None:
                    for event in self._events:
                        cuda.event_destroy(event)
                if self._stream is not None:
                    cuda.stream_destroy(self._stream)
                self._loaded = None  # context, engine, runtime go before the CUDA context does
        finally:
            self._buffers, self._events, self._stream, self._loaded = {}, None, None, None
            self._shapes = {}
            self._cuda = None
            cuda.close()
