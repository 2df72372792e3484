"""An engine moved between Orin modules: every Orin reports GPU "Orin" and compute capability 8.7,
so the sidecar also records the SM count and the device-tree model, and loading on another
module warns in one line (it still loads: same TensorRT, same GPU architecture)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from test_trt_build import FakeState, build, fake_tensorrt, fer_model

from fer_edge.build import engine as build_module
from fer_edge.build import tensorrt_builder as tensorrt_api
from fer_edge.core.errors import FerEdgeError
from fer_edge.model import engine_sidecar as sidecar_module
from fer_edge.model.engine_sidecar import DeviceInfo, board_model_here, check_device, module_mismatch, read_sidecar
from fer_edge.runtime import classifier_trt as trt_engine
from fer_edge.runtime.classifier import load_backend
from fer_edge.runtime.cuda_api import CudaPythonApi, PyCudaApi

AGX = "NVIDIA Jetson AGX Orin Developer Kit"
NANO = "NVIDIA Jetson Orin Nano Developer Kit"


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> FakeState:
    """test_trt_build's fake TensorRT 10.3 on an Orin."""
    state = FakeState()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(state))
    monkeypatch.setattr(tensorrt_api, "gpu_here", lambda: ("Orin", "8.7"))
    return state


def test_board_model_is_the_nul_terminated_device_tree_string(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(NANO.encode() + b"\x00")
    assert board_model_here(model) == NANO
    model.write_bytes(b"\x00")
    assert board_model_here(model) is None
    assert board_model_here(tmp_path / "absent") is None  # not a Jetson


def test_module_mismatch_is_pure_and_needs_both_sides() -> None:
    agx = DeviceInfo("10.3.0.30", "Orin", "8.7", sm_count=16, board_model=AGX)
    nano = DeviceInfo("10.3.0.30", "Orin", "8.7", sm_count=8, board_model=NANO)
    assert module_mismatch(agx, agx) is None
    message = module_mismatch(agx, nano)
    assert message is not None and "16 SMs, this one has 8" in message and NANO in message
    # Orin Nano 4GB and 8GB can share a carrier board's device-tree name: the SM count still differs.
    assert module_mismatch(DeviceInfo("10.3", "Orin", "8.7", 4, NANO), DeviceInfo("10.3", "Orin", "8.7", 8, NANO))
    # An older sidecar, or a machine that cannot tell, is no mismatch.
    assert module_mismatch(DeviceInfo("10.3.0.30", "Orin", "8.7"), nano) is None
    assert module_mismatch(agx, DeviceInfo("10.3.0.30", "Orin", "8.7")) is None


def test_check_device_warns_for_another_module_and_still_refuses_another_gpu(
    tmp_path: Path, fake_trt: FakeState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = tmp_path / "model"
    model_file.write_bytes(AGX.encode() + b"\x00")
    monkeypatch.setattr(sidecar_module, "DEVICE_TREE_MODEL", model_file)
    monkeypatch.setattr(build_module, "sm_count_here", lambda: 16)
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out))
    assert code == 0, output
    sidecar = read_sidecar(out)
    assert (sidecar.sm_count, sidecar.board_model) == (16, AGX)

    nano = DeviceInfo("10.3.0.30", "Orin", "8.7", sm_count=8, board_model=NANO)
    monkeypatch.setattr(trt_engine, "device_here", lambda index=0: nano)
    capsys.readouterr()
    backend = load_backend(out)
    assert backend.precision == "fp16"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "16 SMs, this one has 8" in err[0], err
    assert "rebuild with: fer-edge build-engine" in err[0]

    check_device(out, sidecar, DeviceInfo("10.3.0.30", "Orin", "8.7", sm_count=16, board_model=AGX))
    assert capsys.readouterr().err == ""  # the same module: silent
    with pytest.raises(FerEdgeError, match="this machine has TensorRT 10.3.0.30 on GPU Xavier"):
        check_device(out, sidecar, DeviceInfo("10.3.0.30", "Xavier", "7.2", sm_count=8, board_model=NANO))


def test_a_sidecar_without_the_new_fields_still_reads(tmp_path: Path, fake_trt: FakeState) -> None:
    import json

    out = tmp_path / "m.fp16.engine"
    assert build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out))[0] == 0
    side = Path(str(out) + ".json")
    raw = json.loads(side.read_text())
    del raw["sm_count"], raw["board_model"]
    side.write_text(json.dumps(raw))
    assert read_sidecar(out).built_on == DeviceInfo(raw["tensorrt_version"], "Orin", "8.7")


def test_both_bindings_report_the_sm_count() -> None:
    """Fakes shaped like the real calls: cudaGetDeviceProperties(...).multiProcessorCount, and
    pycuda's Device.get_attribute(device_attribute.MULTIPROCESSOR_COUNT)."""

    class Cudart:
        def cudaSetDevice(self, device: int) -> tuple[int]:
            return (0,)

        def cudaFree(self, ptr: int) -> tuple[int]:
            return (0,)

        def cudaGetDeviceProperties(self, device: int) -> tuple[int, Any]:
            return 0, types.SimpleNamespace(name=b"Orin\x00", major=8, minor=7, multiProcessorCount=16)

    assert CudaPythonApi(Cudart()).multiprocessor_count() == 16

    class Device:
        def __init__(self, index: int) -> None:
            pass

        def retain_primary_context(self) -> Any:
            return types.SimpleNamespace(push=lambda: None, pop=lambda: None, detach=lambda: None)

        def get_attribute(self, attribute: str) -> int:
            return {"MULTIPROCESSOR_COUNT": 8}[attribute]

    driver = types.SimpleNamespace(
        init=lambda: None, Device=Device,
        device_attribute=types.SimpleNamespace(MULTIPROCESSOR_COUNT="MULTIPROCESSOR_COUNT"),
    )
    api = PyCudaApi(driver)
    assert api.multiprocessor_count() == 8
    api.close()
