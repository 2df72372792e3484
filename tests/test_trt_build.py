"""build-engine against a fake ``tensorrt`` module (no TensorRT here): the defects of issue 12.

The fake follows NVIDIA's documented Python API (Builder, IBuilderConfig, OnnxParser, Runtime,
IEngineInspector) closely enough for ``fer_edge.build.tensorrt_builder.build_serialized`` to run, and
records what the builder was asked to do.
"""

from __future__ import annotations

import json
import shlex
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from fer_edge.bench.plan import devices_for, is_cpu_layout, plan_rows
from fer_edge.build import tensorrt_builder as tensorrt_api
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.engine_sidecar import DeviceInfo, read_sidecar, sidecar_path
from fer_edge.model.shipped import WEIGHTS_DIR
from fer_edge.runtime import classifier_trt as trt_engine
from fer_edge.runtime.classifier import load_backend
from fer_edge.runtime.classifier_ort import TRT_EP, provider_options

LABELS7 = ["a", "b", "c", "d", "e", "f", "g"]
INSPECTOR_JSON = json.dumps({"Layers": [
    {"Name": "conv1 + relu1", "LayerType": "CaskConvolution", "Outputs": [{"Format/Datatype": "Int8 NC/32HW32"}]},
    {"Name": "gemm", "LayerType": "CaskGemm", "Outputs": [{"Format/Datatype": "Half"}]},
], "Bindings": ["input", "logits"]})


@dataclass
class FakeState:
    version: str = "10.3.0.30"
    num_classes: int = 7
    dla_cores: int = 0
    gpu_only: tuple[str, ...] = ()  # layers can_run_on_DLA says no to
    create_cache_returns_none: bool = False
    create_cache_raises: bool = False  # for non-empty (unreadable) bytes
    set_cache_results: list[bool] = field(default_factory=list)  # popped per call; default True
    get_cache_returns_none: bool = False
    inspector_json: str | None = INSPECTOR_JSON
    flags: list[str] = field(default_factory=list)
    caches_created: list[bytes] = field(default_factory=list)
    device_type: Any = None
    verbosity: Any = None
    built: int = 0


def fake_tensorrt(state: FakeState) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = state.version  # type: ignore[attr-defined]

    class Logger:
        WARNING, ERROR = 2, 1

        def __init__(self, level: int) -> None:
            self.level = level

    class Flags:
        EXPLICIT_BATCH, STRONGLY_TYPED = 0, 1

    class BuilderFlag:
        INT8, FP16, GPU_FALLBACK = "INT8", "FP16", "GPU_FALLBACK"

    class Cache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return b"fresh timing cache"

    class Layer:
        def __init__(self, name: str) -> None:
            self.name = name

    class Tensor:
        def __init__(self, name: str, shape: tuple[int, ...]) -> None:
            self.name, self.shape = name, shape

    class Network:
        num_inputs = num_outputs = 1
        layers = ["conv1", "relu1", "gemm"]

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> Layer:
            return Layer(self.layers[i])

        def get_input(self, i: int) -> Tensor:
            return Tensor("input", (-1, 1, 48, 48))

        def get_output(self, i: int) -> Tensor:
            return Tensor("logits", (-1, state.num_classes))

    class Config:
        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            pass

        def set_flag(self, flag: str) -> None:
            state.flags.append(flag)

        def add_optimization_profile(self, profile: Any) -> None:
            pass

        def create_timing_cache(self, data: bytes) -> Cache | None:
            state.caches_created.append(bytes(data))
            if data and state.create_cache_raises:
                raise RuntimeError("cannot deserialize the timing cache")
            return None if state.create_cache_returns_none else Cache(bytes(data))

        def set_timing_cache(self, cache: Cache | None, ignore_mismatch: bool) -> bool:
            assert cache is not None, "TensorRT's set_timing_cache takes a cache object"
            self.cache = cache
            return state.set_cache_results.pop(0) if state.set_cache_results else True

        def get_timing_cache(self) -> Cache | None:
            return None if state.get_cache_returns_none else getattr(self, "cache", None)

        def can_run_on_DLA(self, layer: Layer) -> bool:
            return layer.name not in state.gpu_only

        def __setattr__(self, name: str, value: Any) -> None:
            if name == "default_device_type":
                state.device_type = value
            if name == "profiling_verbosity":
                state.verbosity = value
            object.__setattr__(self, name, value)

    class Profile:
        def set_shape(self, name: str, low: Any, opt: Any, high: Any) -> None:
            pass

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.num_DLA_cores = state.dla_cores

        def create_network(self, flags: int) -> Network:
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            state.built += 1
            return b"serialized engine " * 8

    class Parser:
        num_errors = 0

        def __init__(self, network: Network, logger: Logger) -> None:
            pass

        def parse_from_file(self, path: str) -> bool:
            return Path(path).is_file()

    class Inspector:
        def get_engine_information(self, fmt: str) -> str | None:
            return state.inspector_json

    class Engine:
        def create_engine_inspector(self) -> Inspector:
            return Inspector()

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine:
            return Engine()

    for name, value in {
        "Logger": Logger, "Builder": Builder, "OnnxParser": Parser, "Runtime": Runtime,
        "NetworkDefinitionCreationFlag": Flags, "BuilderFlag": BuilderFlag,
        "MemoryPoolType": types.SimpleNamespace(WORKSPACE="WORKSPACE"),
        "DeviceType": types.SimpleNamespace(DLA="DLA", GPU="GPU"),
        "ProfilingVerbosity": types.SimpleNamespace(DETAILED="DETAILED"),
        "LayerInformationFormat": types.SimpleNamespace(JSON="JSON"),
        "Dims": lambda shape: tuple(shape),
    }.items():
        setattr(trt, name, value)
    return trt


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> FakeState:
    state = FakeState()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(state))
    monkeypatch.setattr(tensorrt_api, "gpu_here", lambda: ("Orin", "8.7"))
    return state


def fer_model(tmp_path: Path, precision: str = "fp32", opset: int = 17) -> Path:
    """A tiny fer-edge-contract ONNX: FP32 (Reshape → Gemm) or a TensorRT-layout Q/DQ graph."""
    from onnx import TensorProto, helper, numpy_helper

    if precision == "int8":
        from test_onnx_rules import qdq_conv_graph

        model = qdq_conv_graph(opset=opset)
        model.metadata_props.add(key="calibration", value="{}")
        model.metadata_props.add(key="quant_target", value="tensorrt")
    else:
        w = numpy_helper.from_array(np.zeros((7, 48 * 48), dtype=np.float32), "w")
        shape = numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape")
        graph = helper.make_graph(
            [helper.make_node("Reshape", ["input", "shape"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1)],
            "tiny",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 48, 48])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 7])],
            [w, shape],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        for key, value in {"labels": json.dumps(LABELS7), "dataset": "fer2013", "arch": "tiny",
                           "fer_edge_version": "0"}.items():
            model.metadata_props.add(key=key, value=value)
    path = tmp_path / f"tiny.{precision}.onnx"
    onnx.save(model, str(path))
    return path


def build(*args: str) -> tuple[int, str]:
    from fer_edge.cli import app

    result = CliRunner().invoke(app, ["build-engine", *args])
    return result.exit_code, result.output


def warning_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning:")]


# -- timing cache -----------------------------------------------------------------------------


def test_stale_timing_cache_falls_back_to_a_fresh_one(fake_trt: FakeState, tmp_path: Path) -> None:
    onnx_path, out, cache = fer_model(tmp_path), tmp_path / "m.fp16.engine", tmp_path / "trt.cache"
    cache.write_bytes(b"cache from another GPU")
    fake_trt.set_cache_results = [False, True]  # the old cache is refused, a fresh one taken
    code, output = build(str(onnx_path), "--precision", "fp16", "--out", str(out), "--timing-cache", str(cache))
    assert code == 0, output
    warned = warning_lines(output)
    assert len(warned) == 1 and "another GPU or TensorRT version" in warned[0] and str(cache) in warned[0]
    assert fake_trt.caches_created == [b"cache from another GPU", b""]
    assert out.is_file() and read_sidecar(out).engine_bytes == out.stat().st_size
    assert cache.read_bytes() == b"fresh timing cache"


def test_unreadable_timing_cache_falls_back_too(fake_trt: FakeState, tmp_path: Path) -> None:
    onnx_path, out, cache = fer_model(tmp_path), tmp_path / "m.fp16.engine", tmp_path / "trt.cache"
    cache.write_bytes(b"\x00garbage")
    fake_trt.create_cache_raises = True
    code, output = build(str(onnx_path), "--precision", "fp16", "--out", str(out), "--timing-cache", str(cache))
    assert code == 0, output
    warned = warning_lines(output)
    assert len(warned) == 1 and "building with a fresh one" in warned[0]
    assert out.is_file() and cache.read_bytes() == b"fresh timing cache"


def test_timing_cache_calls_returning_none_still_write_the_engine(fake_trt: FakeState, tmp_path: Path) -> None:
    # create_timing_cache / get_timing_cache may return None: before, an AttributeError after a
    # full build, and no engine written.
    onnx_path, out, cache = fer_model(tmp_path), tmp_path / "m.fp16.engine", tmp_path / "trt.cache"
    cache.write_bytes(b"old")
    fake_trt.create_cache_returns_none = True
    fake_trt.get_cache_returns_none = True
    code, output = build(str(onnx_path), "--precision", "fp16", "--out", str(out), "--timing-cache", str(cache))
    assert code == 0, output
    warned = warning_lines(output)
    assert "Traceback" not in output and len(warned) == 1 and "building without one" in warned[0]
    assert out.is_file() and sidecar_path(out).is_file()
    assert cache.read_bytes() == b"old"  # left as it was


def test_timing_cache_lost_after_the_build_is_a_warning(fake_trt: FakeState, tmp_path: Path) -> None:
    onnx_path, out, cache = fer_model(tmp_path), tmp_path / "m.fp16.engine", tmp_path / "trt.cache"
    fake_trt.get_cache_returns_none = True
    code, output = build(str(onnx_path), "--precision", "fp16", "--out", str(out), "--timing-cache", str(cache))
    assert code == 0, output
    warned = warning_lines(output)
    assert len(warned) == 1 and "no timing cache after the build" in warned[0]
    assert out.is_file() and not cache.exists()


# -- precision flags, DLA, layer placement ----------------------------------------------------


@pytest.mark.parametrize("version", ["8.5.2.2", "8.6.2.3", "10.3.0.30"])
def test_int8_builds_also_set_fp16(fake_trt: FakeState, tmp_path: Path, version: str) -> None:
    fake_trt.version, fake_trt.num_classes = version, 3
    sys.modules["tensorrt"].__version__ = version  # type: ignore[attr-defined]
    out = tmp_path / "m.int8.engine"
    code, output = build(str(fer_model(tmp_path, "int8")), "--out", str(out))
    assert code == 0, output
    assert fake_trt.flags == ["INT8", "FP16"]
    sidecar = read_sidecar(out)
    assert sidecar.tensorrt_version == version and sidecar.precision == "int8"
    # the engine inspector's view of the layers is recorded: which run in INT8, which in FP16
    assert fake_trt.verbosity == "DETAILED"
    assert sidecar.layers == {"engine": [
        {"name": "conv1 + relu1", "type": "CaskConvolution", "output": "Int8 NC/32HW32"},
        {"name": "gemm", "type": "CaskGemm", "output": "Half"},
    ]}


def test_dla_build_sets_fp16_and_records_gpu_fallback(fake_trt: FakeState, tmp_path: Path) -> None:
    fake_trt.dla_cores, fake_trt.gpu_only = 1, ("gemm",)
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--dla", "0", "--batch", "8",
                         "--out", str(out))
    assert code == 0, output
    assert fake_trt.flags == ["FP16", "GPU_FALLBACK"] and fake_trt.device_type == "DLA"
    layers = read_sidecar(out).layers
    assert layers is not None and layers["dla"] == ["conv1", "relu1"] and layers["gpu_fallback"] == ["gemm"]
    warned = warning_lines(output)
    assert len(warned) == 1 and "1 of 3 layers cannot run on the DLA" in warned[0]


def test_dla_on_tensorrt_11_4_1_builds_strongly_typed_from_an_fp16_onnx(
    fake_trt: FakeState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil

    from fer_edge.build import fp16

    fake_trt.dla_cores = 2
    sys.modules["tensorrt"].__version__ = "11.4.1.5"  # type: ignore[attr-defined]
    flags = sys.modules["tensorrt"].BuilderFlag  # type: ignore[attr-defined]
    del flags.FP16, flags.INT8  # as in TensorRT 11: setting either would be an AttributeError
    converted: list[Path] = []

    def convert(src: Path, dst: Path) -> Path:
        converted.append(src)
        return Path(shutil.copyfile(src, dst))

    monkeypatch.setattr(fp16, "can_convert_fp16", lambda: True)
    monkeypatch.setattr(fp16, "convert_to_fp16", convert)
    model, out = fer_model(tmp_path), tmp_path / "m.fp16.engine"
    code, output = build(str(model), "--precision", "fp16", "--dla", "1", "--batch", "8", "--out", str(out))
    assert code == 0, output
    assert converted == [model], "the FP32 graph is converted first: its tensor types are the precision"
    assert fake_trt.flags == ["GPU_FALLBACK"] and fake_trt.device_type == "DLA"
    sidecar = read_sidecar(out)
    assert sidecar.strongly_typed and sidecar.dla_core == 1
    # 11.4.0 (DLA only on Windows on ARM) and 11.0-11.3 are still refused, before anything is built.
    sys.modules["tensorrt"].__version__ = "11.4.0.2"  # type: ignore[attr-defined]
    code, output = build(str(model), "--precision", "fp16", "--dla", "0", "--batch", "8", "--out", str(out))
    assert code == 2 and "no DLA support" in output and "11.4.1" in output and fake_trt.built == 1


def test_dla_with_a_qdq_graph_is_refused_before_building(fake_trt: FakeState, tmp_path: Path) -> None:
    fake_trt.dla_cores = 2
    out = tmp_path / "m.int8.engine"
    code, output = build(str(fer_model(tmp_path, "int8")), "--dla", "0", "--batch", "8", "--out", str(out))
    assert code == 2 and len(output.strip().splitlines()) == 1
    assert "DLA runs only implicitly quantised INT8" in output and "without --dla" in output
    assert fake_trt.built == 0 and not out.exists() and not sidecar_path(out).exists()


def test_dla_on_a_board_without_one(fake_trt: FakeState, tmp_path: Path) -> None:
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--dla", "0", "--batch", "8",
                         "--out", str(out))
    assert code == 2 and "no DLA cores" in output and "build without --dla" in output
    assert not out.exists()


# -- bad input ---------------------------------------------------------------------------------


def test_cpu_layout_int8_is_refused_in_one_line(tmp_path: Path) -> None:
    cpu_layout = WEIGHTS_DIR / "fer2013.int8.cpu.onnx"
    if not cpu_layout.is_file():
        pytest.skip("the shipped CPU-layout model is not in this installation")
    out = tmp_path / "m.int8.engine"
    for extra in ([], ["--print-trtexec"]):
        code, output = build(str(cpu_layout), "--out", str(out), *extra)
        assert code == 2 and len(output.strip().splitlines()) == 1, output
        assert str(cpu_layout) in output and "CPU-layout INT8" in output and "--target tensorrt" in output
    assert not out.exists() and not sidecar_path(out).exists()


def test_opset_newer_than_the_installed_parser(fake_trt: FakeState, tmp_path: Path) -> None:
    sys.modules["tensorrt"].__version__ = "8.6.2.3"  # type: ignore[attr-defined]
    model, out = fer_model(tmp_path, opset=18), tmp_path / "m.fp16.engine"
    code, output = build(str(model), "--precision", "fp16", "--out", str(out))
    assert code == 2 and len(output.strip().splitlines()) == 1
    assert "opset 18 is newer than TensorRT 8.6's parser takes (17)" in output and str(model) in output
    assert fake_trt.built == 0 and not out.exists()


# -- trtexec: TensorRT 11 FP16, and engines built with trtexec ---------------------------------


def test_print_trtexec_fp16_on_trt11_converts_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("fer_edge.runtime.trt_api.tensorrt_version", lambda: "11.0.0.1")
    model, out = fer_model(tmp_path), tmp_path / "m.fp16.engine"
    code, output = build(str(model), "--precision", "fp16", "--out", str(out), "--print-trtexec")
    assert code == 0, output
    line = next(x for x in output.splitlines() if "trtexec" in x)
    convert, build_line = line.split(" && ")
    converted = tmp_path / "m.fp16.onnx"
    assert "convert_to_fp16" in convert and str(model) in convert and str(converted) in convert
    args = shlex.split(build_line)
    assert args[0] == "trtexec" and f"--onnx={converted}" in args and "--stronglyTyped" in args
    assert f"--onnx={model}" not in args  # never the FP32 graph: that would build FP32


def test_fp16_conversion_line_runs(tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common")
    import subprocess

    from fer_edge.build.trtexec import fp16_conversion_command

    src, dst = fer_model(tmp_path), tmp_path / "out.fp16.onnx"
    subprocess.run(shlex.split(fp16_conversion_command(src, dst, python=sys.executable)), check=True)
    model = onnx.load(str(dst))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def test_engine_built_by_trtexec_loads_with_the_sidecar_written_ahead(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("fer_edge.runtime.trt_api.tensorrt_version", lambda: None)  # printed anywhere, for 10.3
    out = tmp_path / "m.fp16.engine"
    code, output = build(str(fer_model(tmp_path)), "--precision", "fp16", "--out", str(out), "--print-trtexec",
                         "--trt-version", "10.3")
    assert code == 0, output
    out.write_bytes(b"what trtexec wrote")
    monkeypatch.setattr(trt_engine, "device_here", lambda index=0: DeviceInfo("10.3.0.30", "Orin", "8.7"))
    capsys.readouterr()
    backend = load_backend(out)
    assert backend.labels == tuple(LABELS7) and backend.precision == "fp16"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "not checked" in err[0]
    # another TensorRT than the one the command was printed for is still refused
    monkeypatch.setattr(trt_engine, "device_here", lambda index=0: DeviceInfo("8.6.2.3", "Orin", "8.7"))
    with pytest.raises(FerEdgeError, match="built with TensorRT 10.3 on GPU unknown"):
        load_backend(out)


# -- ONNX Runtime's TensorRT EP and bench's --device auto --------------------------------------


def test_trt_ep_caches_engines_and_sets_profile_shapes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    options = provider_options(TRT_EP, "int8")
    assert options["trt_engine_cache_enable"] == "True" and options["trt_timing_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == str(tmp_path / "cache" / "ort-tensorrt")
    assert options["trt_timing_cache_path"] == options["trt_engine_cache_path"]
    assert options["trt_profile_min_shapes"] == "input:1x1x48x48"
    assert options["trt_profile_opt_shapes"] == "input:8x1x48x48"
    assert options["trt_profile_max_shapes"] == "input:256x1x48x48"
    assert options["trt_int8_enable"] == "True" and options["trt_fp16_enable"] == "True"
    fp32 = provider_options(TRT_EP, "fp32")
    assert fp32["trt_int8_enable"] == "False" and fp32["trt_fp16_enable"] == "False"


def test_bench_auto_keeps_the_cpu_layout_int8_off_the_gpu_providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fer_edge.bench import plan

    cpu_layout, trt_layout = WEIGHTS_DIR / "fer2013.int8.cpu.onnx", WEIGHTS_DIR / "fer2013.int8.onnx"
    if not (cpu_layout.is_file() and trt_layout.is_file()):
        pytest.skip("the shipped INT8 models are not in this installation")
    gpu = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    monkeypatch.setattr(plan, "onnxruntime_providers", lambda: gpu)
    assert is_cpu_layout(cpu_layout, "onnx") and not is_cpu_layout(trt_layout, "onnx")
    assert devices_for("onnx", "auto", cpu_layout=True) == ["cpu"]
    rows = plan_rows([cpu_layout, trt_layout], "auto", 2, (1,), tmp_path, {}, "PrivateTest")
    by_model = {(Path(r.model).name, r.device) for r in rows}
    assert by_model == {("fer2013.int8.cpu.onnx", "cpu"), ("fer2013.int8.onnx", "cpu"),
                        ("fer2013.int8.onnx", "cuda"), ("fer2013.int8.onnx", "tensorrt")}
    with pytest.raises(FerEdgeError, match="CPU-layout INT8.*--device cpu"):
        plan_rows([cpu_layout], "tensorrt", 2, (1,), tmp_path, {}, "PrivateTest")
