"""CUDA bindings that cannot create a context (fakes): fall back to the other one, explain why,
and make ``fer-edge info`` fail in one line when a GPU is here and no binding can open it."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.runtime import cuda_context
from fer_edge.runtime import environment as envinfo
from fer_edge.runtime.cuda_api import CudaError
from fer_edge.runtime.cuda_context import load_cuda_api
from fer_edge.runtime.cuda_version import (
    binding_for_cuda,
    explain_context_failure,
    parse_cuda_version_json,
    toolkit_cuda_version,
)


class Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100


class FakeCudart:
    """cuda-python's runtime module as far as opening a device goes."""

    def __init__(self, context_error: Err = Err.cudaSuccess, driver: int = 12060) -> None:
        self.context_error = context_error
        self.driver = driver
        self.calls: list[str] = []

    def cudaSetDevice(self, device: int) -> tuple[Err]:
        self.calls.append(f"cudaSetDevice({device})")
        return (Err.cudaSuccess,)

    def cudaFree(self, ptr: int) -> tuple[Err]:
        self.calls.append(f"cudaFree({ptr})")
        return (self.context_error,)

    def cudaDriverGetVersion(self) -> tuple[Err, int]:
        return (Err.cudaSuccess, self.driver)

    def cudaGetDeviceProperties(self, device: int) -> tuple[Err, Any]:
        return (Err.cudaSuccess, SimpleNamespace(name=b"Orin\0\0", major=8, minor=7))


class FakePycudaError(Exception):
    pass


def fake_pycuda(works: bool) -> Any:
    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        def retain_primary_context(self) -> Any:
            if not works:
                raise FakePycudaError("cuDevicePrimaryCtxRetain failed: forward compatibility was attempted "
                                      "on non supported HW")
            return SimpleNamespace(push=lambda: None, detach=lambda: None)

        def name(self) -> str:
            return "Orin"

        def compute_capability(self) -> tuple[int, int]:
            return (8, 7)

    return SimpleNamespace(Error=FakePycudaError, init=lambda: None, Device=Device)


@pytest.fixture(autouse=True)
def _no_shared_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test opens its own binding: none is left shared from another test."""
    monkeypatch.setattr(cuda_context, "_OPEN", {})


def install(monkeypatch: pytest.MonkeyPatch, cudart: Any = None, pycuda: Any = None) -> None:
    monkeypatch.setattr(cuda_context, "import_cudart", lambda: cudart)
    monkeypatch.setattr(cuda_context, "import_pycuda_driver", lambda: pycuda)


def test_a_context_is_created_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    cudart = FakeCudart()
    install(monkeypatch, cudart)
    api = load_cuda_api(0)
    assert api.name == "cuda-python" and cudart.calls == ["cudaSetDevice(0)", "cudaFree(0)"]


def test_falls_back_to_pycuda_when_cuda_python_cannot_create_a_context(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeCudart(Err.cudaErrorInsufficientDriver), fake_pycuda(works=True))
    api = load_cuda_api(0)
    assert api.name == "pycuda"
    assert api.device_info() == ("Orin", "8.7")


def test_falls_back_to_cuda_python_when_pycuda_is_broken_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # The order is cuda-python first; a working cuda-python is used even when pycuda is broken.
    install(monkeypatch, FakeCudart(), fake_pycuda(works=False))
    assert load_cuda_api(0).name == "cuda-python"


def test_no_binding_can_create_a_context_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeCudart(Err.cudaErrorInsufficientDriver, driver=12060), fake_pycuda(works=False))
    with pytest.raises(CudaError) as exc:
        load_cuda_api(0)
    message = str(exc.value)
    assert "\n" not in message
    assert "cuda-python" in message and "cudaErrorInsufficientDriver" in message
    assert "pycuda" in message and "forward compatibility" in message
    assert "pip install 'cuda-python>=12.6,<12.7'" in message and "CUDA 12.6" in message


def test_jetpack5_driver_points_at_pycuda(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeCudart(Err.cudaErrorInsufficientDriver, driver=11040), None)
    with pytest.raises(CudaError, match=r"CUDA 11\.4\); pip install pycuda"):
        load_cuda_api(0)


def test_a_forced_binding_does_not_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeCudart(Err.cudaErrorNoDevice), fake_pycuda(works=True))
    with pytest.raises(CudaError, match="no CUDA device is visible"):
        load_cuda_api(0, "cuda-python")


def test_no_binding_installed_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)
    with pytest.raises(Exception, match="needs a CUDA binding; install one: pip install cuda-python"):
        load_cuda_api(0)


def test_cuda_version_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_cuda_version_json('{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}}') == "12.6"
    assert parse_cuda_version_json('{"cuda": {"version": "11.4.315"}}') == "11.4"
    assert parse_cuda_version_json("CUDA Version 10.2.300") is None
    assert parse_cuda_version_json('{"cuda": {"version": "twelve"}}') is None
    path = tmp_path / "version.json"
    monkeypatch.setenv("FER_EDGE_CUDA_VERSION_JSON", str(path))
    assert toolkit_cuda_version() is None
    path.write_text('{"cuda": {"version": "12.2.140"}}')
    assert toolkit_cuda_version() == "12.2"


@pytest.mark.parametrize(
    ("cuda", "expect"),
    [
        ("12.2", "pip install 'cuda-python>=12.2,<12.3'"),
        ("12.6", "pip install 'cuda-python>=12.6,<12.7'"),
        ("11.4", "pip install pycuda"),
        (None, "scripts/jetson_setup.sh"),
    ],
)
def test_binding_for_cuda(cuda: str | None, expect: str) -> None:
    assert expect in binding_for_cuda(cuda)


def test_explanations() -> None:
    assert "libcuda.so" in explain_context_failure("RuntimeError: libcuda.so.1: cannot open shared object", None)
    assert "newer CUDA than this device's (an older CUDA)" in explain_context_failure("(code 35)", None)


def _fake_environment(monkeypatch: pytest.MonkeyPatch, cudart: Any, pycuda: Any) -> None:
    install(monkeypatch, cudart, pycuda)
    monkeypatch.setattr(envinfo, "_cuda_binding", lambda: "cuda-python 12.9.0")
    monkeypatch.setattr(envinfo, "_gpus", lambda: [])
    monkeypatch.setattr(envinfo, "_tensorrt", lambda: None)
    monkeypatch.setattr(envinfo, "_nvidia_gpu_present", lambda: True)


def test_info_creates_a_context_and_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_environment(monkeypatch, FakeCudart(), None)
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    cuda = json.loads(result.output)["cuda"]
    assert cuda["driver"] == "12.6"
    assert cuda["context"] == "ok (cuda-python on Orin, compute capability 8.7)"


def test_info_fails_in_one_line_when_no_binding_opens_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_environment(monkeypatch, FakeCudart(Err.cudaErrorInsufficientDriver), fake_pycuda(works=False))
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "no CUDA binding could create a context" in errors[0]
    assert "pip install 'cuda-python>=12.6,<12.7'" in errors[0]


def test_info_without_a_gpu_does_not_try(monkeypatch: pytest.MonkeyPatch) -> None:
    cudart = FakeCudart(Err.cudaErrorNoDevice)
    _fake_environment(monkeypatch, cudart, None)
    monkeypatch.setattr(envinfo, "_nvidia_gpu_present", lambda: False)
    monkeypatch.setattr(envinfo, "_jetson", lambda: None)
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cuda"]["context"] == "not tried (no NVIDIA GPU)"
    assert "cudaFree(0)" not in cudart.calls
