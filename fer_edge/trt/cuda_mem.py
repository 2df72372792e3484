"""Kept for imports from before the runtime package: CUDA memory lives in ``fer_edge.runtime``
(``cuda_api``: the bindings; ``cuda_context``: one shared context; ``buffers``: HostDeviceMem)."""

from __future__ import annotations

from fer_edge.runtime.buffers import HostDeviceMem, free_all
from fer_edge.runtime.cuda_api import CudaApi, CudaError, CudaPythonApi, PyCudaApi, check_cuda
from fer_edge.runtime.cuda_context import (
    BINDINGS,
    INSTALL_HINT,
    cuda_device_count,
    device_cuda_version,
    import_cudart,
    import_pycuda_driver,
    load_cuda_api,
)

__all__ = [
    "BINDINGS", "INSTALL_HINT", "CudaApi", "CudaError", "CudaPythonApi", "HostDeviceMem", "PyCudaApi",
    "check_cuda", "cuda_device_count", "device_cuda_version", "free_all", "import_cudart",
    "import_pycuda_driver", "load_cuda_api",
]
