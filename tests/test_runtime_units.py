"""The runtime's pure parts: TensorRT data types as numpy dtypes (every DataType of 8.5, 8.6, 10.x,
11.x), provider options that belong to their model, and one CUDA binding shared per process."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_tensorrt_runtime import DATATYPES

import fer_edge
from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime import cuda_context
from fer_edge.runtime.trt_dtypes import TRT_TO_NUMPY, datatype_name, numpy_dtype

NUMPY_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "BOOL": np.bool_,
               "UINT8": np.uint8, "INT64": np.int64}


@pytest.mark.parametrize("release", sorted(DATATYPES))
def test_every_tensorrt_data_type_maps_or_is_refused_in_one_line(release: str) -> None:
    for name in DATATYPES[release]:
        member = types.SimpleNamespace(name=name)  # a pybind11 enum member has .name
        if name in NUMPY_TYPES:
            assert numpy_dtype(member) == np.dtype(NUMPY_TYPES[name])
            assert numpy_dtype(name) == np.dtype(NUMPY_TYPES[name])
        else:
            with pytest.raises(FerEdgeError, match=f"'logits' is {name} at the engine's boundary") as info:
                numpy_dtype(member, "logits")
            assert "\n" not in str(info.value)


def test_the_table_knows_exactly_the_data_types_tensorrt_has() -> None:
    every = {name for names in DATATYPES.values() for name in names}
    assert set(TRT_TO_NUMPY) == every
    assert datatype_name("DataType.HALF") == "HALF"  # str() of a member where .name is missing
    with pytest.raises(FerEdgeError, match="does not know"):
        numpy_dtype("FLOAT128")


def test_no_code_calls_trt_nptype() -> None:
    package = Path(fer_edge.__file__).parent
    callers = [str(p) for p in package.rglob("*.py") if re.search(r"\bnptype\(", p.read_text())]
    assert callers == []


# -- provider options belong to their model --------------------------------------------------------


class FakeSession:
    made: list[dict[str, Any]] = []

    def __init__(self, path: str, sess_options: Any = None, providers: Any = None) -> None:
        FakeSession.made.append({"path": path, "providers": providers})
        self.providers = [p for p, _ in providers]
        yunet = "yunet" in Path(path).name
        self.inputs = [types.SimpleNamespace(name="input", type="tensor(float)",
                                             shape=[1, 3, "h", "w"] if yunet else ["N", 1, 48, 48])]
        names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)] if yunet else ["logits"]
        self.outputs = [types.SimpleNamespace(name=n) for n in names]

    def get_providers(self) -> list[str]:
        return self.providers

    def get_inputs(self) -> list[Any]:
        return self.inputs

    def get_outputs(self) -> list[Any]:
        return self.outputs


def fake_onnxruntime() -> types.ModuleType:
    ort = types.ModuleType("onnxruntime")
    ort.get_available_providers = lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider",  # type: ignore[attr-defined]
                                           "CPUExecutionProvider"]
    ort.InferenceSession = FakeSession  # type: ignore[attr-defined]
    ort.SessionOptions = lambda: types.SimpleNamespace()  # type: ignore[attr-defined]
    return ort


def tiny_yunet(path: Path) -> Path:
    """A graph with YuNet's interface (3-channel input of any size, the twelve outputs)."""
    import onnx
    from onnx import TensorProto, helper

    names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], [n]) for n in names], "yunet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_yunet_on_the_tensorrt_provider_gets_its_own_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_camera_helpers import tiny_fer_model

    from fer_edge.camera.detection import make_detector
    from fer_edge.runtime.classifier import load_backend

    monkeypatch.setitem(sys.modules, "onnxruntime", fake_onnxruntime())
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    FakeSession.made = []
    detector = make_detector(tiny_yunet(tmp_path / "yunet.onnx"), device="tensorrt")
    with load_backend(tiny_fer_model(tmp_path / "m.onnx"), device="tensorrt") as classifier:
        assert classifier.name == "onnxruntime-tensorrt"
    assert getattr(detector, "backend", None) == "onnxruntime-tensorrt"
    (yunet_trt,), (classifier_trt,) = ([opts for p, opts in made["providers"] if p == "TensorrtExecutionProvider"]
                                       for made in FakeSession.made)
    assert classifier_trt["trt_profile_max_shapes"] == "input:256x1x48x48"
    assert not [key for key in yunet_trt if key.startswith("trt_profile")], yunet_trt
    # A shape is NxCxHxW; the cache path is under pytest's numbered tmp dir, which may well contain "48".
    assert not [value for value in yunet_trt.values() if re.search(r"\d+x\d+x48x48", value)], yunet_trt
    assert yunet_trt["trt_fp16_enable"] == "False" and yunet_trt["trt_engine_cache_enable"] == "True"


# -- one CUDA binding per process ----------------------------------------------------------------------


class FakeCudart:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def cudaSetDevice(self, device: int) -> tuple[int]:
        self.calls.append("cudaSetDevice")
        return (0,)

    def cudaFree(self, ptr: int) -> tuple[int]:
        self.calls.append(f"cudaFree({ptr})")
        return (0,)


def test_every_engine_of_a_process_shares_one_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    cudart = FakeCudart()
    monkeypatch.setattr(cuda_context, "_OPEN", {})
    monkeypatch.setattr(cuda_context, "import_cudart", lambda: cudart)
    first = cuda_context.load_cuda_api(0)
    second = cuda_context.load_cuda_api(0)
    assert first is second and cudart.calls == ["cudaSetDevice", "cudaFree(0)"]  # opened once
    with pytest.raises(FerEdgeError, match="already runs CUDA device 0 through cuda-python"):
        cuda_context.load_cuda_api(0, "pycuda")
    first.close()
    assert cuda_context.shared_api(0) is second  # the second user still holds it
    second.close()
    assert cuda_context.shared_api(0) is None
    third = cuda_context.load_cuda_api(0)
    assert third is not first
    third.close()


# -- the ONNX Runtime runner on a real session ------------------------------------------------------


def test_the_onnx_runtime_runner_maps_named_arrays(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from test_camera_helpers import tiny_fer_model

    from fer_edge.runtime.ort_runner import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(tiny_fer_model(tmp_path / "m.onnx"), device="cpu", threads=1)
    assert not runner.is_active and runner.name == "onnxruntime-cpu"
    batch = np.full((3, 1, 48, 48), 100, np.float32)
    with runner:
        assert [i.name for i in runner.inputs] == ["input"] and runner.output_names == ["logits"]
        outputs = runner.infer({"input": batch})
        assert set(outputs) == {"logits"} and outputs["logits"].shape == (3, 7)
        assert runner.last_latency_ms is not None and runner.last_latency_ms > 0
        assert runner.last_gpu_ms is None and runner.last_host_ms is None  # no device time on the CPU
        with pytest.raises(FerEdgeError, match="already active"):
            runner.activate()
        with pytest.raises(FerEdgeError) as info:
            runner.infer({"input": np.zeros((1, 3, 48, 48), np.float32)})
        assert "cannot run this model on input [1, 3, 48, 48]" in str(info.value) and "\n" not in str(info.value)
    assert not runner.is_active
    runner.deactivate()  # idempotent
    with pytest.raises(FerEdgeError, match="threads must be >= 1"):
        OnnxRuntimeRunner(tmp_path / "m.onnx", threads=0)
