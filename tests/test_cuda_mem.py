"""CUDA memory helpers: return-code checks everywhere; real copies where a CUDA device is present.

The GPU tests need cuda-python (or pycuda) and a CUDA device, not TensorRT.
"""

from __future__ import annotations

import enum

import numpy as np
import pytest

from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime.buffers import HostDeviceMem
from fer_edge.runtime.cuda_api import CudaError, check_cuda
from fer_edge.runtime.cuda_context import cuda_device_count, import_cudart, import_pycuda_driver, load_cuda_api


class FakeError(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2


def test_check_cuda_unpacks_values() -> None:
    assert check_cuda((FakeError.cudaSuccess,)) is None
    assert check_cuda((FakeError.cudaSuccess, 42)) == 42
    assert check_cuda((FakeError.cudaSuccess, 1, 2)) == (1, 2)
    assert check_cuda(FakeError.cudaSuccess) is None


def test_check_cuda_raises_with_the_error_name() -> None:
    with pytest.raises(CudaError, match="cudaMalloc failed: cudaErrorMemoryAllocation \\(code 2\\)"):
        check_cuda((FakeError.cudaErrorMemoryAllocation, None), "cudaMalloc")
    assert issubclass(CudaError, FerEdgeError)  # one line at the CLI


def test_unknown_binding_is_refused() -> None:
    with pytest.raises(FerEdgeError, match="unknown CUDA binding"):
        load_cuda_api(binding="opencl")


def test_importing_the_module_creates_no_context() -> None:
    # In a fresh interpreter: importing the backends and CUDA helpers loads no CUDA binding at all.
    import subprocess
    import sys

    code = (
        "import sys, fer_edge.runtime.classifier, fer_edge.runtime.cuda_api, fer_edge.runtime.cuda_context,"
        " fer_edge.runtime.classifier_trt,"
        " fer_edge.runtime.trt_runner, fer_edge.runtime.ort_runner, fer_edge.runtime.detector_yunet_trt\n"
        "bad = [m for m in ('pycuda.autoinit', 'pycuda.driver', 'cuda.bindings.runtime', 'tensorrt', 'torch')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _bindings() -> list[str]:
    names = []
    if import_cudart() is not None:
        names.append("cuda-python")
    if import_pycuda_driver() is not None:
        names.append("pycuda")
    return names


needs_gpu = pytest.mark.skipif(
    cuda_device_count() == 0 and import_pycuda_driver() is None,
    reason="no CUDA device visible through cuda-python (or no CUDA binding installed)",
)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("binding", _bindings() or ["none"])
def test_round_trip_through_the_device(binding: str) -> None:
    if binding == "none":
        pytest.skip("no CUDA binding installed")
    api = load_cuda_api(0, binding)
    try:
        name, capability = api.device_info()
        assert name and capability.count(".") == 1
        stream = api.stream_create()
        assert isinstance(api.stream_handle(stream), int)
        src = HostDeviceMem(api, 4096, np.float32)
        dst = HostDeviceMem(api, 4096, np.float32)
        try:
            assert src.nbytes == 4096 * 4
            values = np.random.default_rng(0).random(4096, dtype=np.float32)
            src.host[:] = values
            src.to_device_async(stream)
            # device → host into the second buffer's host side, from the first buffer's device memory
            api.dtoh_async(dst.host, src.device, stream)
            api.stream_sync(stream)
            np.testing.assert_array_equal(dst.host, values)
            # partial copies: only the first 100 elements travel
            src.host[:] = 0
            src.host[:100] = 7
            src.to_device_async(stream, 100)
            src.host[:] = -1
            src.to_host_async(stream)
            api.stream_sync(stream)
            assert np.all(src.host[:100] == 7)
            np.testing.assert_array_equal(src.host[100:], values[100:])
            with pytest.raises(CudaError, match="does not fit"):
                src.to_device_async(stream, 5000)
        finally:
            src.free()
            dst.free()
            src.free()  # idempotent
            api.stream_destroy(stream)
        with pytest.raises(CudaError, match="freed"):
            src.to_device_async(stream)
    finally:
        api.close()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("binding", _bindings() or ["none"])
def test_events_time_the_work_on_the_stream(binding: str) -> None:
    if binding == "none":
        pytest.skip("no CUDA binding installed")
    api = load_cuda_api(0, binding)
    try:
        stream = api.stream_create()
        small, big = HostDeviceMem(api, 1024, np.float32), HostDeviceMem(api, 64 * 1024 * 1024, np.float32)
        begin, end = api.event_create(), api.event_create()
        try:
            timings = {}
            for name, buf in (("small", small), ("big", big)):
                api.event_record(begin, stream)
                for _ in range(3):
                    buf.to_device_async(stream)
                api.event_record(end, stream)
                timings[name] = api.event_elapsed_ms(begin, end)  # waits for the copies itself
            # 3 x 256 MB host-to-device takes milliseconds on any PCIe/NVLink; 3 x 4 kB does not
            assert 0 <= timings["small"] < timings["big"]
            assert timings["big"] > 1.0
        finally:
            api.event_destroy(begin)
            api.event_destroy(end)
            small.free()
            big.free()
            api.stream_destroy(stream)
    finally:
        api.close()


@pytest.mark.gpu
@needs_gpu
def test_many_allocations_are_freed() -> None:
    if not _bindings():
        pytest.skip("no CUDA binding installed")
    api = load_cuda_api(0)
    try:
        for _ in range(50):
            buf = HostDeviceMem(api, 1 << 20, np.uint8)  # 1 MiB pinned + 1 MiB device, 50 times
            buf.free()
    finally:
        api.close()
