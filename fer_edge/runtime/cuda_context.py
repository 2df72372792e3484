"""One CUDA context per process: the binding is opened once per device and shared by every
engine (classifier and detector), and released when its last user closes it.

``load_cuda_api`` picks cuda-python, else pycuda (``binding`` forces one). Both work on the
device's primary context (see ``cuda_api``), so a classifier engine and a detector engine in one
camera process use the same context, whatever order they start and stop in.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional

from fer_edge.core.errors import FerEdgeError, first_line
from fer_edge.runtime.cuda_api import CudaApi, CudaError, CudaPythonApi, PyCudaApi, check_cuda

INSTALL_HINT = "pip install cuda-python (or pycuda on JetPack 5)"
BINDINGS = ("cuda-python", "pycuda")

_OPEN: Dict[int, CudaApi] = {}  # device index -> the process's binding on it
_LOCK = threading.RLock()


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


def _open_binding(name: str, device: int) -> Optional[CudaApi]:
    """``name``'s API on ``device`` (None when that binding is not installed); raises when the
    binding is there but cannot open the device's context."""
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


def _forget(api: CudaApi) -> None:
    with _LOCK:
        if _OPEN.get(api.device) is api:
            del _OPEN[api.device]


def shared_api(device: int = 0) -> Optional[CudaApi]:
    """The binding this process has open on ``device``, if any (for tests and diagnostics)."""
    return _OPEN.get(device)


def load_cuda_api(device: int = 0, binding: str = "auto") -> CudaApi:
    """The process's CUDA binding on ``device``: opened on first use, shared afterwards. Each
    caller calls ``close()`` once when done.

    With ``auto``, a binding that is installed but cannot create a context (built for a newer
    CUDA than the device's, say) is skipped for the other one; when none can, the one-line error
    names each binding's failure and the one to install.
    """
    if binding not in ("auto", *BINDINGS):
        raise FerEdgeError(f"unknown CUDA binding {binding!r}")
    with _LOCK:
        api = _OPEN.get(device)
        if api is not None:
            if binding not in ("auto", api.name):
                raise FerEdgeError(f"this process already runs CUDA device {device} through {api.name}; "
                                   f"one process uses one CUDA binding (asked for {binding})")
            api.users += 1
            return api
        api = _open_first(device, binding)
        api.on_last_close = _forget
        _OPEN[device] = api
        return api


def _open_first(device: int, binding: str) -> CudaApi:
    from fer_edge.runtime.cuda_version import binding_version

    failures: list[str] = []
    for name in BINDINGS if binding == "auto" else (binding,):
        try:
            api = _open_binding(name, device)
        except (CudaError, RuntimeError, OSError) as exc:  # cuda-python raises RuntimeError without libcuda
            failures.append(f"{name} {binding_version(name)}".strip() + f": {first_line(exc)}")
            continue
        if api is not None:
            return api
    if not failures:
        raise FerEdgeError(f"running a TensorRT engine needs a CUDA binding; install one: {INSTALL_HINT}")
    from fer_edge.runtime.cuda_version import explain_context_failure, toolkit_cuda_version

    device_cuda = device_cuda_version() or toolkit_cuda_version()
    raise CudaError(
        f"no CUDA binding could create a context on device {device} ({'; '.join(failures)}): "
        + explain_context_failure(" ".join(failures), device_cuda)
    )


def device_cuda_version() -> str | None:
    """The CUDA version the driver supports (``cudaDriverGetVersion``, no context needed)."""
    from fer_edge.runtime.cuda_version import driver_version_string

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
