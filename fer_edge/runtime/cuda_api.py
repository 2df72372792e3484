"""The CUDA operations the TensorRT runner needs, over two bindings, on the primary context.

:class:`CudaPythonApi` (cuda-python's runtime API, what TensorRT's samples use since 10.14) and
:class:`PyCudaApi` (pycuda, for JetPack 5) implement one small interface, :class:`CudaApi`.
Both work on the device's *primary* context, the one the CUDA runtime API uses, so every engine
of a process (classifier and detector) shares one context: pycuda retains it
(``Device.retain_primary_context``) and pushes it only around its own work (:meth:`activated`),
popping exactly what it pushed; cuda-python's ``cudaSetDevice`` + ``cudaFree(0)`` select it.
Nothing here touches CUDA at import time; :func:`fer_edge.runtime.cuda_context.load_cuda_api`
opens a binding, once per process and device.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any, Callable, Iterator, Optional

import numpy as np

from fer_edge.core.errors import FerEdgeError


class CudaError(FerEdgeError):
    """A CUDA call returned an error code."""


def check_cuda(result: Any, call: str = "CUDA call") -> Any:
    """Turn a cuda-python return value ``(err, *values)`` into its value(s), or raise.

    ``cudaSuccess`` and ``CUDA_SUCCESS`` are both 0, so one helper serves the runtime and the
    driver API. Returns ``None``, the single value, or a tuple of values.
    """
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        raise CudaError(f"{call} failed: {name} (code {int(err)})")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class CudaApi:
    """The operations the runner needs; one subclass per binding.

    One instance serves the whole process for its device (see ``cuda_context``): each user
    calls :meth:`close` once, and the context is released when the last user has.
    """

    name = "none"

    def __init__(self, device: int) -> None:
        self.device = device
        self.users = 1
        self.on_last_close: Optional[Callable[[CudaApi], None]] = None

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """The shared context is current inside (TensorRT and CUDA calls go in here)."""
        yield

    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def free_pinned(self, handle: Any) -> None:
        raise NotImplementedError

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        raise NotImplementedError

    def device_free(self, handle: Any) -> None:
        raise NotImplementedError

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Any) -> None:
        raise NotImplementedError

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Any) -> None:
        raise NotImplementedError

    def stream_create(self) -> Any:
        raise NotImplementedError

    def stream_handle(self, stream: Any) -> int:
        raise NotImplementedError

    def stream_sync(self, stream: Any) -> None:
        raise NotImplementedError

    def stream_destroy(self, stream: Any) -> None:
        raise NotImplementedError

    def device_info(self) -> tuple[str, str]:
        """``(name, "major.minor")`` of the device."""
        raise NotImplementedError

    def multiprocessor_count(self) -> int | None:
        """The device's SM count (tells Orin modules apart: all are "Orin", 8.7); None if unknown."""
        return None

    # CUDA events time the work queued on a stream as the GPU saw it, not as Python waited for it.
    def event_create(self) -> Any:
        raise NotImplementedError

    def event_record(self, event: Any, stream: Any) -> None:
        raise NotImplementedError

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events; waits for ``end`` to complete first."""
        raise NotImplementedError

    def event_destroy(self, event: Any) -> None:
        raise NotImplementedError

    def release(self) -> None:
        """Give the primary context back (the last user is done)."""

    def close(self) -> None:
        """This user is done; the context goes when the last user closes. Idempotent per user
        only through the caller (each user calls it once)."""
        if self.users <= 0:
            return
        self.users -= 1
        if self.users == 0:
            try:
                self.release()
            finally:
                if self.on_last_close is not None:
                    self.on_last_close(self)


def _contiguous(host: np.ndarray) -> None:
    if not host.flags.c_contiguous:
        raise CudaError("host buffer for an async copy must be C-contiguous")


class CudaPythonApi(CudaApi):
    """cuda-python's runtime API (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6).

    The runtime API always works on the device's primary context: ``cudaSetDevice`` makes it
    current on the calling thread, so :meth:`activated` sets the device and nothing is popped.
    """

    name = "cuda-python"

    def __init__(self, cudart: Any, device: int = 0) -> None:
        super().__init__(device)
        self.cudart = cudart
        check_cuda(cudart.cudaSetDevice(device), "cudaSetDevice")
        # CUDA 11 creates the primary context lazily; cudaFree(0) makes it now, so a binding
        # that does not fit the driver fails here rather than at the first copy.
        check_cuda(cudart.cudaFree(0), "cudaFree(0) (creating the CUDA context)")

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        # Another thread (the camera's) may run the engine: the primary context is per device,
        # the current device per thread.
        check_cuda(self.cudart.cudaSetDevice(self.device), "cudaSetDevice")
        yield

    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, Any]:
        dtype = np.dtype(dtype)
        nbytes = max(count * dtype.itemsize, 1)
        ptr = int(check_cuda(self.cudart.cudaMallocHost(nbytes), "cudaMallocHost"))
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        array = np.ctypeslib.as_array(raw).view(np.uint8)[: count * dtype.itemsize].view(dtype)
        return array, ptr

    def free_pinned(self, handle: Any) -> None:
        check_cuda(self.cudart.cudaFreeHost(handle), "cudaFreeHost")

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        ptr = int(check_cuda(self.cudart.cudaMalloc(max(nbytes, 1)), "cudaMalloc"))
        return ptr, ptr

    def device_free(self, handle: Any) -> None:
        check_cuda(self.cudart.cudaFree(handle), "cudaFree")

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Any) -> None:
        _contiguous(host)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        check_cuda(self.cudart.cudaMemcpyAsync(device_ptr, host.ctypes.data, host.nbytes, kind, stream),
                   "cudaMemcpyAsync (host to device)")

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Any) -> None:
        _contiguous(host)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check_cuda(self.cudart.cudaMemcpyAsync(host.ctypes.data, device_ptr, host.nbytes, kind, stream),
                   "cudaMemcpyAsync (device to host)")

    def stream_create(self) -> Any:
        return check_cuda(self.cudart.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_sync(self, stream: Any) -> None:
        check_cuda(self.cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def stream_destroy(self, stream: Any) -> None:
        check_cuda(self.cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def device_info(self) -> tuple[str, str]:
        props = check_cuda(self.cudart.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        name = props.name
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).split(b"\0", 1)[0].decode("utf-8", "replace")
        return str(name).strip(), f"{props.major}.{props.minor}"

    def multiprocessor_count(self) -> int | None:
        props = check_cuda(self.cudart.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        return int(props.multiProcessorCount)

    def event_create(self) -> Any:
        return check_cuda(self.cudart.cudaEventCreate(), "cudaEventCreate")

    def event_record(self, event: Any, stream: Any) -> None:
        check_cuda(self.cudart.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        check_cuda(self.cudart.cudaEventSynchronize(end), "cudaEventSynchronize")
        return float(check_cuda(self.cudart.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def event_destroy(self, event: Any) -> None:
        check_cuda(self.cudart.cudaEventDestroy(event), "cudaEventDestroy")


class PyCudaApi(CudaApi):
    """pycuda on the device's primary context (never ``import pycuda.autoinit``, never
    ``make_context``, which would push a second context for the second engine).

    The context is retained once and pushed only inside :meth:`activated`, which pops what it
    pushed; nested use on one thread pushes once. Every method that makes or uses a handle
    runs inside it, so handles belong to the shared context whoever calls.
    """

    name = "pycuda"

    def __init__(self, driver: Any, device: int = 0) -> None:
        super().__init__(device)
        self.driver = driver
        driver.init()
        self._device = driver.Device(device)
        self._context: Any = self._device.retain_primary_context()  # not made current
        self._local = threading.local()

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            if self._context is None:
                raise CudaError("the CUDA context is already released")
            self._context.push()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                self.driver.Context.pop()  # ours: pushed above, on this thread

    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, Any]:
        with self.activated():
            array = self.driver.pagelocked_empty(count, np.dtype(dtype))
        return array, array.base

    def free_pinned(self, handle: Any) -> None:
        with self.activated():
            handle.free()

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        with self.activated():
            alloc = self.driver.mem_alloc(max(nbytes, 1))
        return int(alloc), alloc

    def device_free(self, handle: Any) -> None:
        with self.activated():
            handle.free()

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Any) -> None:
        _contiguous(host)
        with self.activated():
            self.driver.memcpy_htod_async(device_ptr, host, stream)

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Any) -> None:
        _contiguous(host)
        with self.activated():
            self.driver.memcpy_dtoh_async(host, device_ptr, stream)

    def stream_create(self) -> Any:
        with self.activated():
            return self.driver.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_sync(self, stream: Any) -> None:
        with self.activated():
            stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        del stream  # pycuda frees a stream when it is garbage-collected

    def device_info(self) -> tuple[str, str]:
        major, minor = self._device.compute_capability()
        return str(self._device.name()), f"{major}.{minor}"

    def multiprocessor_count(self) -> int | None:
        return int(self._device.get_attribute(self.driver.device_attribute.MULTIPROCESSOR_COUNT))

    def event_create(self) -> Any:
        with self.activated():
            return self.driver.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        with self.activated():
            event.record(stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        with self.activated():
            end.synchronize()
            return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        del event  # pycuda destroys an event when it is garbage-collected

    def release(self) -> None:
        # Drops the retain of the primary context; nothing is popped here (activated() pops
        # what it pushes), so another library's context on the stack stays where it is.
        if self._context is not None:
            self._context.detach()
            self._context = None
