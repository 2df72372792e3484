"""TensorRT decisions (pure): flags per version, profiles, sidecars, trtexec lines, refusals."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fer_edge.build.engine_options import BuildOptions
from fer_edge.build.tensorrt_builder import NOT_INSTALLED, describe_parser_error, tensorrt_version
from fer_edge.build.trt_versions import parse_trt_release, parse_trt_version, plan_precision
from fer_edge.build.trtexec import render_trtexec
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.files import file_sha256
from fer_edge.model.engine_sidecar import (
    DeviceInfo,
    Sidecar,
    check_device,
    check_engine_file,
    device_mismatch,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from fer_edge.runtime.engine_profile import BatchProfile, chunks_for, parse_batch, profile_from_shapes

TRT86, TRT10, TRT11 = (8, 6), (10, 3), (11, 0)


# -- precision / flags per TensorRT version ---------------------------------------------------


@pytest.mark.parametrize(
    ("version", "precision", "graph", "flags", "net_flags", "strong"),
    [
        # INT8 also sets FP16: the float layers of a Q/DQ graph run in FP16, not FP32.
        ((8, 5), "int8", "int8", ("INT8", "FP16"), ("EXPLICIT_BATCH",), False),
        (TRT86, "int8", "int8", ("INT8", "FP16"), ("EXPLICIT_BATCH",), False),
        (TRT86, "fp16", "fp32", ("FP16",), ("EXPLICIT_BATCH",), False),
        (TRT86, "fp32", "fp32", (), ("EXPLICIT_BATCH",), False),
        (TRT10, "int8", "int8", ("INT8", "FP16"), (), False),
        (TRT10, "fp16", "fp32", ("FP16",), (), False),
        (TRT10, "fp16", "fp16", ("FP16",), (), False),
        (TRT11, "int8", "int8", (), ("STRONGLY_TYPED",), True),
        (TRT11, "fp16", "fp16", (), ("STRONGLY_TYPED",), True),
        (TRT11, "fp32", "fp32", (), ("STRONGLY_TYPED",), True),
    ],
)
def test_flags_per_version(
    version: tuple[int, int],
    precision: str,
    graph: str,
    flags: tuple[str, ...],
    net_flags: tuple[str, ...],
    strong: bool,
) -> None:
    plan = plan_precision(version, precision, graph)
    assert plan.builder_flags == flags
    assert plan.network_flags == net_flags
    assert plan.strongly_typed is strong
    assert not plan.convert_to_fp16


def test_trt11_fp16_from_fp32_converts_or_refuses() -> None:
    assert plan_precision(TRT11, "fp16", "fp32", can_convert_fp16=True).convert_to_fp16
    with pytest.raises(FerEdgeError, match="strongly typed.*onnxconverter-common"):
        plan_precision(TRT11, "fp16", "fp32", can_convert_fp16=False)


@pytest.mark.parametrize("version", [TRT86, TRT10, TRT11])
def test_int8_without_qdq_points_to_quantize(version: tuple[int, int]) -> None:
    with pytest.raises(FerEdgeError, match="fer-edge quantize"):
        plan_precision(version, "int8", "fp32")


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_qdq_graph_needs_int8(precision: str) -> None:
    with pytest.raises(FerEdgeError, match="--precision int8"):
        plan_precision(TRT10, precision, "int8")


@pytest.mark.parametrize("version", [(8, 5), TRT86, TRT10])
def test_dla_flags_and_refusals(version: tuple[int, int]) -> None:
    plan = plan_precision(version, "fp16", "fp32", dla=True)
    assert plan.builder_flags == ("FP16", "GPU_FALLBACK")
    with pytest.raises(FerEdgeError, match="DLA runs FP16 or INT8"):
        plan_precision(version, "fp32", "fp32", dla=True)
    # The DLA runs only implicitly quantised INT8: a Q/DQ graph would silently run on the GPU.
    with pytest.raises(FerEdgeError, match="Q/DQ.*DLA runs only implicitly quantised INT8.*without --dla"):
        plan_precision(version, "int8", "int8", dla=True)


@pytest.mark.parametrize("version", [TRT11, (11, 3, 0), (11, 4, 0), (11, 4)])
def test_no_dla_on_tensorrt_11_before_11_4_1(version: tuple[int, ...]) -> None:
    with pytest.raises(FerEdgeError, match="no DLA support.*10.7.*11.4.1.*AGX Orin"):
        plan_precision(version, "fp16", "fp16", dla=True)


@pytest.mark.parametrize("version", [(11, 4, 1), (11, 5, 0), (12, 0, 0)])
def test_dla_on_tensorrt_11_4_1_is_strongly_typed_without_the_fp16_flag(version: tuple[int, ...]) -> None:
    plan = plan_precision(version, "fp16", "fp16", dla=True)
    assert plan.builder_flags == ("GPU_FALLBACK",) and plan.strongly_typed and not plan.convert_to_fp16
    converted = plan_precision(version, "fp16", "fp32", can_convert_fp16=True, dla=True)
    assert converted.convert_to_fp16 and converted.builder_flags == ("GPU_FALLBACK",)
    with pytest.raises(FerEdgeError, match="FP16 needs an FP16 ONNX"):
        plan_precision(version, "fp16", "fp32", can_convert_fp16=False, dla=True)
    with pytest.raises(FerEdgeError, match="DLA runs only implicitly quantised INT8"):
        plan_precision(version, "int8", "int8", dla=True)


@pytest.mark.parametrize(("text", "expected"), [("11.4.1.7", (11, 4, 1)), ("11.4", (11, 4, 0)), ("8.5.2", (8, 5, 2))])
def test_parse_trt_release(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_trt_release(text) == expected


def test_old_tensorrt_is_refused_and_opt_level_support() -> None:
    with pytest.raises(FerEdgeError, match="8.5 or newer"):
        plan_precision((8, 2), "fp32", "fp32")
    assert not plan_precision((8, 5), "fp32", "fp32").supports_opt_level
    assert plan_precision(TRT86, "fp32", "fp32").supports_opt_level


@pytest.mark.parametrize(("text", "expected"), [("10.3.0.30", (10, 3)), ("8.6.2", (8, 6)), ("11.0", (11, 0))])
def test_parse_trt_version(text: str, expected: tuple[int, int]) -> None:
    assert parse_trt_version(text) == expected


def test_stub_only_tensorrt_counts_as_not_installed() -> None:
    # tensorrt-stubs leaves an importable, empty 'tensorrt' namespace; TensorRT itself is absent here.
    try:
        import tensorrt
    except ImportError:
        return
    if not hasattr(tensorrt, "Builder"):
        assert tensorrt_version() is None


# -- batch profiles ---------------------------------------------------------------------------


def test_parse_batch() -> None:
    assert parse_batch("1:8:32") == BatchProfile(1, 8, 32)
    assert parse_batch("4") == BatchProfile(4, 4, 4)
    assert parse_batch("4").is_static
    assert parse_batch("1:8:32").shapes() == {
        "min": [1, 1, 48, 48],
        "opt": [8, 1, 48, 48],
        "max": [32, 1, 48, 48],
    }
    assert profile_from_shapes(parse_batch("2:4:8").shapes()) == BatchProfile(2, 4, 8)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0:1:2", "at least 1"),
        ("8:4:16", "min <= opt <= max"),
        ("1:8", "min:opt:max"),
        ("a:b:c", "whole numbers"),
        ("1:8:99999", "above"),
        ("-1", "at least 1"),
    ],
)
def test_bad_batch_is_refused(text: str, why: str) -> None:
    with pytest.raises(FerEdgeError, match=why):
        parse_batch(text)


def test_chunks_split_and_pad() -> None:
    assert chunks_for(70, BatchProfile(1, 8, 32)) == [(0, 32, 32), (32, 64, 32), (64, 70, 6)]
    assert chunks_for(3, BatchProfile(8, 8, 8)) == [(0, 3, 8)]  # static engine: pad 3 rows to 8
    assert chunks_for(1, BatchProfile(1, 1, 1)) == [(0, 1, 1)]


# -- options ---------------------------------------------------------------------------------


def test_options_validation(tmp_path: Path) -> None:
    onnx, out = tmp_path / "m.onnx", tmp_path / "m.engine"
    with pytest.raises(FerEdgeError, match="static shapes"):
        BuildOptions(onnx, out, batch=BatchProfile(1, 8, 32), dla_core=0)
    with pytest.raises(FerEdgeError, match=r"\.engine"):
        BuildOptions(onnx, tmp_path / "m.trt")
    with pytest.raises(FerEdgeError, match="opt-level"):
        BuildOptions(onnx, out, opt_level=7)
    with pytest.raises(FerEdgeError, match="workspace"):
        BuildOptions(onnx, out, workspace_mb=0)
    line = BuildOptions(onnx, out, precision="fp16", batch=BatchProfile(4, 4, 4), dla_core=1).command_line()
    assert shlex.split(line)[:3] == ["fer-edge", "build-engine", str(onnx)]
    assert "--dla 1" in line and "--batch 4:4:4" in line and "--precision fp16" in line


# -- trtexec rendering ------------------------------------------------------------------------


def _opts(tmp_path: Path, **kw: object) -> BuildOptions:
    return BuildOptions(tmp_path / "m.int8.onnx", tmp_path / "m.int8.engine", **kw)  # type: ignore[arg-type]


def test_trtexec_int8_on_trt10(tmp_path: Path) -> None:
    args = shlex.split(render_trtexec(_opts(tmp_path, timing_cache=Path("trt.cache"), opt_level=3), TRT10))
    assert args[0] == "trtexec"
    assert f"--onnx={tmp_path / 'm.int8.onnx'}" in args
    assert f"--saveEngine={tmp_path / 'm.int8.engine'}" in args
    assert "--minShapes=input:1x1x48x48" in args
    assert "--optShapes=input:8x1x48x48" in args
    assert "--maxShapes=input:32x1x48x48" in args
    assert "--int8" in args and "--fp16" in args and "--stronglyTyped" not in args
    assert "--memPoolSize=workspace:256M" in args
    assert "--timingCacheFile=trt.cache" in args
    assert "--builderOptimizationLevel=3" in args


def test_trtexec_fp16_dla_on_trt86(tmp_path: Path) -> None:
    args = shlex.split(
        render_trtexec(
            _opts(tmp_path, precision="fp16", batch=BatchProfile(8, 8, 8), dla_core=0, workspace_mb=512),
            TRT86,
        )
    )
    assert "--fp16" in args
    assert "--useDLACore=0" in args and "--allowGPUFallback" in args
    assert "--memPoolSize=workspace:512" in args
    assert "--minShapes=input:8x1x48x48" in args and "--maxShapes=input:8x1x48x48" in args


def test_trtexec_strongly_typed_on_trt11(tmp_path: Path) -> None:
    args = shlex.split(render_trtexec(_opts(tmp_path), TRT11))
    assert "--stronglyTyped" in args
    assert "--int8" not in args and "--fp16" not in args


def test_trtexec_quotes_paths_with_spaces(tmp_path: Path) -> None:
    opts = BuildOptions(
        tmp_path / "my models" / "m.onnx", tmp_path / "out dir" / "m.engine", precision="fp32"
    )
    args = shlex.split(render_trtexec(opts, TRT10))
    assert f"--onnx={tmp_path / 'my models' / 'm.onnx'}" in args


# -- sidecar ---------------------------------------------------------------------------------


def _sidecar(engine: Path, **kw: object) -> Sidecar:
    data = engine.read_bytes()
    import hashlib

    fields: dict[str, object] = dict(
        tensorrt_version="10.3.0.30",
        gpu_name="Orin",
        compute_capability="8.7",
        precision="int8",
        profile=BatchProfile(1, 8, 32).shapes(),
        source_onnx="m.int8.onnx",
        source_onnx_sha256="ab" * 32,
        labels=["angry", "happy"],
        dataset="fer2013",
        engine_sha256=hashlib.sha256(data).hexdigest(),
        engine_bytes=len(data),
        build_command="fer-edge build-engine m.int8.onnx --precision int8 --out m.engine",
        built_at="2025-01-01T00:00:00+00:00",
        build_seconds=12.5,
    )
    fields.update(kw)
    return Sidecar(**fields)  # type: ignore[arg-type]


def test_sidecar_round_trip(tmp_path: Path) -> None:
    engine = tmp_path / "m.int8.engine"
    engine.write_bytes(b"plan" * 100)
    sidecar = _sidecar(engine)
    written = write_sidecar(engine, sidecar)
    assert written == sidecar_path(engine) == tmp_path / "m.int8.engine.json"
    raw = json.loads(written.read_text())
    for key in (
        "tensorrt_version",
        "gpu_name",
        "compute_capability",
        "precision",
        "profile",
        "source_onnx_sha256",
        "labels",
        "dataset",
        "built_at",
    ):
        assert key in raw
    assert read_sidecar(engine) == sidecar
    check_engine_file(engine, sidecar)
    assert file_sha256(engine) == sidecar.engine_sha256


def test_missing_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    with pytest.raises(FerEdgeError, match="no sidecar m.engine.json.*build-engine"):
        read_sidecar(engine)


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps({"format": "something-else"}), json.dumps([1, 2])]
)
def test_foreign_sidecar(tmp_path: Path, content: str) -> None:
    engine = tmp_path / "m.engine"
    sidecar_path(engine).write_text(content)
    with pytest.raises(FerEdgeError, match="sidecar"):
        read_sidecar(engine)


def test_truncated_or_replaced_engine(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan" * 100)
    sidecar = _sidecar(engine)
    engine.write_bytes(b"plan" * 50)
    with pytest.raises(FerEdgeError, match="truncated.*rebuild with: fer-edge build-engine"):
        check_engine_file(engine, sidecar)
    engine.write_bytes(b"PLAN" * 100)
    with pytest.raises(FerEdgeError, match="replaced or corrupt"):
        check_engine_file(engine, sidecar)


def test_device_mismatch_message(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    sidecar = _sidecar(engine)
    built = sidecar.built_on
    assert device_mismatch(built, built) is None
    assert device_mismatch(built, DeviceInfo("10.3.0.30", "unknown", "unknown")) is None
    here = DeviceInfo("10.7.0.23", "NVIDIA GeForce RTX 4090", "8.9")
    message = device_mismatch(built, here)
    assert message == (
        "built with TensorRT 10.3.0.30 on GPU Orin (sm_87); "
        "this machine has TensorRT 10.7.0.23 on GPU NVIDIA GeForce RTX 4090 (sm_89)"
    )
    with pytest.raises(FerEdgeError) as info:
        check_device(engine, sidecar, here)
    text = str(info.value)
    assert "built with TensorRT 10.3.0.30 on GPU Orin (sm_87)" in text
    assert "rebuild with: fer-edge build-engine m.int8.onnx" in text
    assert "\n" not in text
    assert device_mismatch(built, DeviceInfo("10.3.0.30", "Orin", "8.6")) is not None


def test_parser_error_names_the_node() -> None:
    assert (
        describe_parser_error(0, 12, "Conv_3", "Conv", "unsupported pads\n")
        == "node 12 'Conv_3' (Conv): unsupported pads"
    )
    assert describe_parser_error(2, -1, "", "", "bad model") == "error 2: bad model"


# -- the command without TensorRT -------------------------------------------------------------


@pytest.fixture
def fer_onnx(tmp_path: Path) -> Path:
    """A tiny fer-edge-contract ONNX built with onnx.helper (no torch needed)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((7, 48 * 48), dtype=np.float32), "w")
    shape = numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 7])],
        [w, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in {
        "labels": json.dumps(["a", "b", "c", "d", "e", "f", "g"]),
        "dataset": "fer2013",
        "arch": "tiny",
        "fer_edge_version": "0.1.0",
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def _run(*args: str) -> tuple[int, str]:
    from fer_edge.cli import app

    result = CliRunner().invoke(app, ["build-engine", *args])
    return result.exit_code, result.output


@pytest.mark.skipif(tensorrt_version() is not None, reason="TensorRT is installed here")
def test_build_engine_without_tensorrt(fer_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.engine"
    code, output = _run(str(fer_onnx), "--precision", "fp16", "--out", str(out))
    assert code != 0
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert (
        "TensorRT is not installed" in lines[0]
        and "JetPack" in lines[0]
        and "pip install tensorrt" in lines[0]
    )
    assert "Traceback" not in output
    assert not out.exists() and not sidecar_path(out).exists()
    assert list(tmp_path.glob("*.engine*")) == []
    assert NOT_INSTALLED in lines[0]


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--precision", "int8"], "fer-edge quantize"),
        (["--batch", "0:1:2"], "at least 1"),
        (["--precision", "fp16", "--dla", "0"], "static shapes"),
        (["--precision", "fp32", "--dla", "0", "--batch", "4"], "FP16 or INT8"),
    ],
)
def test_build_engine_refusals(fer_onnx: Path, tmp_path: Path, args: list[str], why: str) -> None:
    out = tmp_path / "tiny.engine"
    code, output = _run(str(fer_onnx), "--out", str(out), *args)
    assert code == 2
    assert why in output and len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert not out.exists()


def test_build_engine_missing_or_foreign_onnx(tmp_path: Path) -> None:
    out = tmp_path / "x.engine"
    code, output = _run(str(tmp_path / "absent.onnx"), "--out", str(out))
    assert code == 2 and "file not found" in output
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"\x00garbage" * 20)
    code, output = _run(str(foreign), "--out", str(out))
    assert code == 2 and "not a readable ONNX" in output
    assert not out.exists()


def test_print_trtexec_works_without_tensorrt(fer_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.engine"
    code, output = _run(
        str(fer_onnx), "--precision", "fp16", "--out", str(out), "--batch", "2:4:16", "--print-trtexec",
        "--trt-version", "10.3",
    )
    assert code == 0, output
    line = next(x for x in output.splitlines() if x.startswith("trtexec"))
    args = shlex.split(line)
    assert (
        args[0] == "trtexec"
        and "--minShapes=input:2x1x48x48" in args
        and "--maxShapes=input:16x1x48x48" in args
    )
    assert not out.exists()
    # The sidecar fields known before trtexec runs, so fer-edge can load trtexec's engine.
    ahead = read_sidecar(out)
    assert ahead.written_ahead and ahead.built_by == "trtexec"
    assert ahead.engine_sha256 == "" and ahead.gpu_name == "unknown"
    assert ahead.precision == "fp16" and ahead.profile == BatchProfile(2, 4, 16).shapes()
    assert ahead.labels == list("abcdefg") and ahead.source_onnx_sha256 == file_sha256(fer_onnx)
    assert ahead.build_command == line
