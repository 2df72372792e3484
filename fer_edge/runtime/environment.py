"""What this machine offers fer-edge: versions, accelerators, Jetson model, camera support.

:func:`environment_report` gathers everything as a plain dict for ``fer-edge info``. The
parsing of Jetson and NVIDIA files is done by pure functions over file contents, so tests feed
them sample strings. Reporting never imports torch. Where a CUDA binding and an NVIDIA GPU are
both here it creates (and releases) a CUDA context for real: a binding that does not match the
device's CUDA imports fine and fails only there, so looking is the only way to know.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
from pathlib import Path
from typing import Any

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.machine import (
    DEVICE_TREE_MODEL,
    MEMINFO,
    cpu_model,
    mem_total_bytes,
    nvidia_gpu_present,
    parse_device_tree_model,
    parse_nvidia_smi,
    query_nvidia_smi,
)
from fer_edge.core.machine import read_bytes as _read
from fer_edge.runtime.ort_session import MISSING

NV_TEGRA_RELEASE = Path("/etc/nv_tegra_release")

# L4T (R-number) major.minor → JetPack release, from NVIDIA's JetPack archive.
L4T_TO_JETPACK: dict[tuple[int, int], str] = {
    (32, 7): "4.6",
    (35, 1): "5.0.2",
    (35, 2): "5.1",
    (35, 3): "5.1.1",
    (35, 4): "5.1.2",
    (35, 5): "5.1.3",
    (35, 6): "5.1.4",
    (36, 2): "6.0 DP",
    (36, 3): "6.0",
    (36, 4): "6.1/6.2",
}


def parse_nv_tegra_release(text: str) -> dict[str, str] | None:
    """``# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic, EABI: aarch64, DATE: ...``
    → ``{"l4t": "36.4.3", "jetpack": "6.1/6.2", "board": "generic"}`` (None if not that format)."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    major, revision = int(match.group(1)), match.group(2)
    minor = int(revision.split(".")[0])
    info = {"l4t": f"{major}.{revision}", "jetpack": L4T_TO_JETPACK.get((major, minor), "unknown")}
    board = re.search(r"BOARD:\s*([^,\s]+)", text)
    if board:
        info["board"] = board.group(1)
    return info


def jetson_dla_cores(model: str | None, mem_total_bytes: int | None = None) -> int | None:
    """DLA cores by Jetson model; None when unknown.

    AGX Orin, Orin NX 16GB and the Xaviers have 2, Orin NX 8GB has 1 (Jetson Orin NX Series
    datasheet), Orin Nano none. The device tree does not always name the Orin NX's memory, so
    the total memory tells the 8 GB module from the 16 GB one.
    """
    if not model:
        return None
    lowered = model.lower()
    if "nano" in lowered:
        return 0
    if "orin nx" in lowered:
        compact = lowered.replace(" ", "")
        if "8gb" in compact and "16gb" not in compact:
            return 1
        if "16gb" in compact:
            return 2
        if mem_total_bytes is None:
            return None
        return 1 if mem_total_bytes < (12 << 30) else 2
    if any(name in lowered for name in ("agx orin", "xavier")):
        return 2
    return None


def opencv_has_gstreamer(build_information: str) -> bool:
    """From ``cv2.getBuildInformation()``: the ``GStreamer:`` line under Video I/O says YES/NO."""
    match = re.search(r"^\s*GStreamer:\s*(\S+)", build_information, re.MULTILINE)
    return bool(match) and match.group(1).upper().startswith("YES")  # type: ignore[union-attr]


def environment_warnings(report: dict[str, Any]) -> list[str]:
    """What a user should fix, derived from a report (pure)."""
    warnings: list[str] = []
    jetson = report.get("jetson")
    opencv = report.get("opencv")
    if jetson and opencv and not opencv.get("gstreamer"):
        warnings.append(
            f"OpenCV {opencv.get('version')} here has no GStreamer, so CSI cameras (nvarguscamerasrc) "
            "will not open: a pip opencv wheel is shadowing JetPack's; run 'pip uninstall opencv-python "
            "opencv-python-headless' in the venv (created with --system-site-packages), see docs/jetson.md"
        )
    if jetson and not report.get("tensorrt"):
        warnings.append("TensorRT is not importable: create the venv with --system-site-packages (docs/jetson.md)")
    if report.get("tensorrt") and not report.get("cuda_binding"):
        from fer_edge.runtime.cuda_version import binding_for_cuda

        cuda = (report.get("cuda") or {}).get("driver") or (report.get("cuda") or {}).get("toolkit")
        warnings.append(f"TensorRT is here but no CUDA binding to run engines: {binding_for_cuda(cuda)}")
    if opencv is None:
        warnings.append("OpenCV is not installed: the camera pipeline (fer-edge run) needs it")
    ort = report.get("onnxruntime", {})
    if ort is None:
        warnings.append(f"{MISSING} (.onnx models and the YuNet detector need it)")
    elif ort.get("error"):
        warnings.append(ort["error"])
    return warnings


# -- gathering (side effects: reads files, runs nvidia-smi, imports light modules) -----------------


def _nvidia_gpu_present() -> bool:  # a seam the tests replace
    return nvidia_gpu_present()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _torch_version() -> str | None:
    if not _installed("torch"):
        return None
    return _version("torch") or "installed"


def _gpus() -> list[dict[str, str]]:
    out = query_nvidia_smi("--query-gpu=name,compute_cap,driver_version,memory.total", "--format=csv,noheader")
    gpus = parse_nvidia_smi(out) if out else []
    if gpus:
        return gpus
    from fer_edge.runtime.cuda_context import cuda_device_count, import_cudart

    cudart = import_cudart()
    gpus = []
    if cudart is not None:
        for index in range(cuda_device_count()):
            result = cudart.cudaGetDeviceProperties(index)
            if int(result[0]) == 0:
                props = result[1]
                name = props.name
                if isinstance(name, (bytes, bytearray)):
                    name = bytes(name).split(b"\0", 1)[0].decode("utf-8", "replace")
                gpus.append({"name": str(name), "compute_capability": f"{props.major}.{props.minor}"})
    return gpus


def _tensorrt() -> dict[str, Any] | None:
    from fer_edge.runtime.trt_api import tensorrt_version

    version = tensorrt_version()
    if version is None:
        return None
    info: dict[str, Any] = {"version": version}
    try:
        import tensorrt as trt

        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        info["dla_cores"] = int(builder.num_DLA_cores)
    except Exception as exc:  # a broken driver must not break `fer-edge info`
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def _opencv() -> dict[str, Any] | None:
    if not _installed("cv2"):
        return None
    import cv2

    build = cv2.getBuildInformation()
    return {
        "version": cv2.__version__,
        "gstreamer": opencv_has_gstreamer(build),
        "path": str(Path(cv2.__file__).parent),
    }


def _onnxruntime() -> dict[str, Any] | None:
    if not _installed("onnxruntime"):
        return None
    from fer_edge.runtime.ort_session import import_onnxruntime

    try:
        ort = import_onnxruntime()
    except FerEdgeError as exc:  # installed but broken: say so in the report, do not stop it
        return {"error": str(exc)}
    return {"version": ort.__version__, "providers": list(ort.get_available_providers())}


def _cuda_binding() -> str | None:
    if _installed("cuda.bindings") or _installed("cuda.cudart"):
        return f"cuda-python {_version('cuda-python') or _version('cuda-bindings') or ''}".strip()
    if _installed("pycuda"):
        return f"pycuda {_version('pycuda') or ''}".strip()
    return None


def _cuda(gpu_expected: bool) -> dict[str, Any]:
    """CUDA toolkit and driver versions, and whether a context can really be created here."""
    from fer_edge.runtime.cuda_context import device_cuda_version, load_cuda_api
    from fer_edge.runtime.cuda_version import toolkit_cuda_version

    info: dict[str, Any] = {"toolkit": toolkit_cuda_version(), "driver": device_cuda_version()}
    if _cuda_binding() is None or not gpu_expected:
        info["context"] = "not tried (no CUDA binding)" if gpu_expected else "not tried (no NVIDIA GPU)"
        return info
    try:
        api = load_cuda_api()
    except FerEdgeError as exc:
        info["context"] = "failed"
        info["error"] = str(exc)
        return info
    try:
        name, capability = api.device_info()
    finally:
        api.close()
    info["context"] = f"ok ({api.name} on {name}, compute capability {capability})"
    return info


def _jetson() -> dict[str, Any] | None:
    release = _read(NV_TEGRA_RELEASE)
    model_raw = _read(DEVICE_TREE_MODEL)
    model = parse_device_tree_model(model_raw) if model_raw else None
    parsed = parse_nv_tegra_release(release.decode("utf-8", "replace")) if release else None
    if parsed is None and not (model and "jetson" in model.lower()):
        return None
    info: dict[str, Any] = {"model": model, **(parsed or {})}
    info["dla_cores_expected"] = jetson_dla_cores(model, mem_total_bytes(_read(MEMINFO)))
    return info


def environment_report() -> dict[str, Any]:
    """Everything ``fer-edge info`` shows, plus ``warnings`` (a list of strings)."""
    from fer_edge import __version__

    report: dict[str, Any] = {
        "fer_edge": __version__,
        "python": platform.python_version(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu": {
            "model": cpu_model(),
            "cores": os.cpu_count(),
        },
        "numpy": _version("numpy"),
        "onnx": _version("onnx"),
        "onnxruntime": _onnxruntime(),
        "torch": _torch_version(),
        "tensorrt": _tensorrt(),
        "cuda_binding": _cuda_binding(),
        "gpus": _gpus(),
        "jetson": _jetson(),
        "opencv": _opencv(),
    }
    report["cuda"] = _cuda(bool(report["jetson"] or report["gpus"] or _nvidia_gpu_present()))
    report["warnings"] = environment_warnings(report)
    return report
