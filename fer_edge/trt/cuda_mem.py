"""CUDA memory for the TensorRT runner: pinned host buffers, device buffers, a stream.

Two bindings behind one small interface, :class:`CudaApi`: cuda-python (``cuda.bindings``,
what TensorRT's samples use since 10.14) and pycuda (older JetPacks). Nothing here touches CUDA
at import time: a binding is imported, and a CUDA context created, only by :func:`load_cuda_api`.
This module does not need TensorRT, so its tests run on any CUDA machine.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_edge.errors import FerEdgeError

INSTALL_HINT = "pip install cuda-python (or pycuda on JetPack 5)"


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
    """The operations the runner needs; one subclass per binding."""

    name = "none"

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
        """``(name, "major.minor")`` of the current device."""
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

    def close(self) -> None:
        """Release the context this API created (if any)."""


def _contiguous(host: np.ndarray) -> None:
    if not host.flags.c_contiguous:
        raise CudaError("host buffer for an async copy must be C-contiguous")


class CudaPythonApi(CudaApi):
    """cuda-python's runtime API (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)."""

    name = "cuda-python"

    def __init__(self, cudart: Any, device: int = 0) -> None:
        self.cudart = cudart
        self.device = device
        check_cuda(cudart.cudaSetDevice(device), "cudaSetDevice")
        # CUDA 11 creates the primary context lazily; cudaFree(0) makes it now, so a binding
        # that does not fit the driver fails here rather than at the first copy.
        check_cuda(cudart.cudaFree(0), "cudaFree(0) (creating the CUDA context)")

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
    """pycuda, with a context created here explicitly (never ``import pycuda.autoinit``)."""

    name = "pycuda"

    def __init__(self, driver: Any, device: int = 0) -> None:
        self.driver = driver
        driver.init()
        self._device = driver.Device(device)
        self._context = self._device.make_context()

    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, Any]:
        array = self.driver.pagelocked_empty(count, np.dtype(dtype))
        return array, array.base

    def free_pinned(self, handle: Any) -> None:
        handle.free()

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        alloc = self.driver.mem_alloc(max(nbytes, 1))
        return int(alloc), alloc

    def device_free(self, handle: Any) -> None:
        handle.free()

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Any) -> None:
        _contiguous(host)
        self.driver.memcpy_htod_async(device_ptr, host, stream)

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Any) -> None:
        _contiguous(host)
        self.driver.memcpy_dtoh_async(host, device_ptr, stream)

    def stream_create(self) -> Any:
        return self.driver.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_sync(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        del stream  # pycuda frees a stream when it is garbage-collected

    def device_info(self) -> tuple[str, str]:
        major, minor = self._device.compute_capability()
        return str(self._device.name()), f"{major}.{minor}"

    def multiprocessor_count(self) -> int | None:
        return int(self._device.get_attribute(self.driver.device_attribute.MULTIPROCESSOR_COUNT))

    def event_create(self) -> Any:
        return self.driver.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        del event  # pycuda destroys an event when it is garbage-collected

    def close(self) -> None:
        if self._context is not None:
            self._context.pop()
            self._context.detach()
            self._context = None


def import_cudart() -> Any | None:
    """cuda-python's runtime module, or None where cuda-python is not installed."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[attr-defined,no-redef]  # older cuda-python
        except ImportError:
            return None
    return cudart


def import_pycuda_driver() -> Any | None:
    try:
        import pycuda.driver as driver
    except ImportError:
        return None
    return driver


BINDINGS = ("cuda-python", "pycuda")


def _open_binding(name: str, device: int) -> CudaApi | None:
    """``name``'s API on ``device`` (None when that binding is not installed); raises when the
    binding is there but cannot create a context."""
    if name == "cuda-python":
        cudart = import_cudart()
        return None if cudart is None else CudaPythonApi(cudart, device)
    driver = import_pycuda_driver()
    if driver is None:
        return None
    try:
        return PyCudaApi(driver, device)
    except driver.Error as exc:
        raise CudaError(f"pycuda could not open CUDA device {device}: {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_cuda_api(device: int = 0, binding: str = "auto") -> CudaApi:
    """Open ``device`` through cuda-python, else pycuda; ``binding`` forces one.

    With ``auto``, a binding that is installed but cannot create a context (built for a newer
    CUDA than the device's, say) is skipped for the other one; when none can, the one-line error
    names each binding's failure and the one to install.
    """
    if binding not in ("auto", *BINDINGS):
        raise FerEdgeError(f"unknown CUDA binding {binding!r}")
    from fer_edge.trt.cuda_version import binding_version

    failures: list[str] = []
    for name in BINDINGS if binding == "auto" else (binding,):
        try:
            api = _open_binding(name, device)
        except (CudaError, RuntimeError, OSError) as exc:  # cuda-python raises RuntimeError without libcuda
            failures.append(f"{name} {binding_version(name)}".strip() + f": {_first_line(exc)}")
            continue
        if api is not None:
            return api
    if not failures:
        raise FerEdgeError(f"running a TensorRT engine needs a CUDA binding; install one: {INSTALL_HINT}")
    from fer_edge.trt.cuda_version import explain_context_failure, toolkit_cuda_version

    device_cuda = device_cuda_version() or toolkit_cuda_version()
    raise CudaError(
        f"no CUDA binding could create a context on device {device} ({'; '.join(failures)}): "
        + explain_context_failure(" ".join(failures), device_cuda)
    )


def device_cuda_version() -> str | None:
    """The CUDA version the driver supports (``cudaDriverGetVersion``, no context needed)."""
    from fer_edge.trt.cuda_version import driver_version_string

    cudart = import_cudart()
    if cudart is None:
        return None
    try:
        code = check_cuda(cudart.cudaDriverGetVersion(), "cudaDriverGetVersion")
    except (CudaError, RuntimeError):
        return None
    return driver_version_string(int(code)) if code else None


def cuda_device_count() -> int:
    """CUDA devices visible through cuda-python (0 without it, without a driver or a GPU)."""
    cudart = import_cudart()
    if cudart is None:
        return 0
    try:
        result = cudart.cudaGetDeviceCount()
        return int(check_cuda(result, "cudaGetDeviceCount"))
    except (CudaError, RuntimeError):
        return 0


class HostDeviceMem:
    """A pinned host array and a device buffer of the same size, freed explicitly with :meth:`free`."""

    def __init__(self, api: CudaApi, count: int, dtype: np.dtype[Any] | type) -> None:
        self.api = api
        self.dtype = np.dtype(dtype)
        self.host, self._host_handle = api.pinned_empty(count, self.dtype)
        try:
            self.device, self._device_handle = api.device_alloc(self.host.nbytes)
        except Exception:
            api.free_pinned(self._host_handle)
            raise
        self.nbytes = int(self.host.nbytes)
        self._freed = False

    def to_device_async(self, stream: Any, count: int | None = None) -> None:
        """Copy the first ``count`` elements (all by default) host → device."""
        self.api.htod_async(self.device, self.host[: self._count(count)], stream)

    def to_host_async(self, stream: Any, count: int | None = None) -> None:
        self.api.dtoh_async(self.host[: self._count(count)], self.device, stream)

    def _count(self, count: int | None) -> int:
        if self._freed:
            raise CudaError("buffer already freed")
        size = int(self.host.size)
        if count is None:
            return size
        if not 0 < count <= size:
            raise CudaError(f"copy of {count} elements does not fit a buffer of {size}")
        return count

    def free(self) -> None:
        if self._freed:
            return
        self._freed = True
        self.host = np.empty(0, dtype=self.dtype)  # drop the view before the memory goes
        self.api.device_free(self._device_handle)
        self.api.free_pinned(self._host_handle)

    def __repr__(self) -> str:
        return f"HostDeviceMem(nbytes={self.nbytes}, dtype={self.dtype}, device=0x{self.device:x})"


def free_all(buffers: Sequence[HostDeviceMem]) -> None:
    for buffer in buffers:
        buffer.free()
