"""INT8 quantisation: TensorRT and CPU layouts, calibration methods, metadata, the accuracy guard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import synthetic_faces, write_fer_csv
from typer.testing import CliRunner

from fer_edge.build.qdq_rules import placement_warnings, tensorrt_violations
from fer_edge.build.quantize import Method, Target, fallback_methods, fp32_weighted_nodes, weighted_nodes
from fer_edge.cli import app
from fer_edge.model.onnx_contract import read_model_metadata

pytest.importorskip("torch")
runner = CliRunner()


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_export import train_small_checkpoint

    from fer_edge.build.export import export_checkpoint

    root = tmp_path_factory.mktemp("quant")
    ckpt = train_small_checkpoint(root / "best.pt")
    out = root / "model.onnx"
    export_checkpoint(ckpt, out)
    return out


@pytest.fixture(scope="module")
def faces_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, labels = synthetic_faces(400, 7, seed=11)
    splits = ["Training"] * 200 + ["PublicTest"] * 150 + ["PrivateTest"] * 50
    return write_fer_csv(tmp_path_factory.mktemp("data") / "fer2013.csv", images, labels, splits)


def quantize(model: Path, data: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["quantize", str(model), "--data", str(data), "--out", str(out), *extra])
    return result.exit_code, result.output


def test_tensorrt_target_follows_every_rule(fp32_model: Path, faces_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.int8.onnx"
    code, output = quantize(fp32_model, faces_csv, out, "--method", "minmax", "--calib-size", "100",
                            "--report-json", str(tmp_path / "report.json"))
    assert code == 0, output
    proto = onnx.load(str(out))
    assert tensorrt_violations(proto) == []
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert not ops & {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
    first_conv = next(n.name for n in proto.graph.node if n.op_type == "Conv")
    assert fp32_weighted_nodes(proto) == [first_conv]  # every other Conv/Gemm is INT8
    # NVIDIA's placement: Q/DQ feed only Conv/Gemm (activation input or weight); nothing on a
    # Conv/Gemm output, after a ReLU or MaxPool, or on the logits.
    assert placement_warnings(proto) == []
    consumers: dict[str, list[str]] = {}
    for n in proto.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n.op_type)
    producers = {out: n.op_type for n in proto.graph.node for out in n.output}
    for n in proto.graph.node:
        if n.op_type == "DequantizeLinear":
            assert set(consumers[n.output[0]]) <= {"Conv", "Gemm"}, n.name
        if n.op_type == "QuantizeLinear":
            assert producers.get(n.input[0]) not in ("Conv", "Gemm"), n.name
    assert producers["logits"] == "Gemm"
    zero_points = [n.input[2] for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert all(zero_points)  # every zero point explicit

    fp32_meta, meta = read_model_metadata(fp32_model), read_model_metadata(out)
    for key in ("labels", "dataset", "arch", "fer_edge_version", "metrics"):
        assert meta[key] == fp32_meta[key]
    assert meta["precision"] == "int8" and meta["quant_target"] == "tensorrt"
    calibration = json.loads(meta["calibration"])
    assert calibration["method"] == "minmax" and calibration["images"] == 100
    assert calibration["split"] == "Training" and len(calibration["manifest_sha256"]) == 16

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["eval_split"] == "PublicTest" and report["eval_images"] == 150
    assert report["size_ratio"] < 0.35 and report["agreement"] > 0.9
    assert report["fp32_latency_ms"] > 0 and report["int8_latency_ms"] > 0
    assert "PublicTest accuracy" in output and "top-1 agreement" in output and "PrivateTest" not in output

    result = runner.invoke(app, ["check-onnx", str(out)])
    assert result.exit_code == 0 and "OK" in result.output


def test_cpu_target_uses_the_integer_kernel_layout(fp32_model: Path, faces_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.int8.cpu.onnx"
    code, output = quantize(fp32_model, faces_csv, out, "--target", "cpu", "--method", "minmax",
                            "--calib-size", "100", "--no-latency")
    assert code == 0, output
    proto = onnx.load(str(out))
    zero_points = [t for t in proto.graph.initializer if t.name.endswith("_zero_point")]
    assert any(t.data_type == onnx.TensorProto.UINT8 for t in zero_points)  # u8 activations
    problems = tensorrt_violations(proto)
    assert any("int32" in p for p in problems)  # quantised bias: ORT's fused integer Conv
    assert read_model_metadata(out)["quant_target"] == "cpu"
    # check-onnx knows a cpu-target model is not meant for TensorRT, unless asked.
    assert runner.invoke(app, ["check-onnx", str(out)]).exit_code == 0
    assert runner.invoke(app, ["check-onnx", str(out), "--rules", "tensorrt"]).exit_code == 1


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_methods_with_an_awkward_set_size(method: str, fp32_model: Path, faces_csv: Path,
                                                   tmp_path: Path) -> None:
    out = tmp_path / f"{method}.onnx"
    # 97 is prime: no equal batches divide it, so 96 images calibrate, in equal batches.
    code, output = quantize(fp32_model, faces_csv, out, "--method", method, "--calib-size", "97",
                            "--no-latency")
    assert code == 0, output
    calibration = json.loads(read_model_metadata(out)["calibration"])
    assert calibration["method"] == method and calibration["images"] == 96


def test_manifest_round_trip_and_hash_refusal(fp32_model: Path, faces_csv: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "calib.json"
    code, output = quantize(fp32_model, faces_csv, tmp_path / "a.onnx", "--method", "minmax",
                            "--calib-size", "50", "--save-manifest", str(manifest), "--no-latency")
    assert code == 0, output
    code, output = quantize(fp32_model, faces_csv, tmp_path / "b.onnx", "--method", "minmax", "--manifest",
                            str(manifest), "--no-latency")
    assert code == 0, output
    drawn = json.loads(read_model_metadata(tmp_path / "a.onnx")["calibration"])
    listed = json.loads(read_model_metadata(tmp_path / "b.onnx")["calibration"])
    assert listed["set"] == str(manifest)
    assert drawn["manifest_sha256"] == listed["manifest_sha256"] and drawn["images"] == listed["images"] == 50

    images, labels = synthetic_faces(400, 7, seed=12)
    other = write_fer_csv(tmp_path / "other.csv", images, labels, ["Training"] * 200 + ["PublicTest"] * 200)
    out = tmp_path / "c.onnx"
    code, output = quantize(fp32_model, other, out, "--manifest", str(manifest), "--no-latency")
    assert code == 2 and "not the same data file" in output and not out.exists()


def test_bad_inputs_are_one_line_errors(fp32_model: Path, faces_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.onnx"
    code, output = quantize(fp32_model, faces_csv, out, "--calib-size", "5000")
    assert code == 2 and "larger than the 200 Training images" in output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"garbage")
    code, output = quantize(junk, faces_csv, out)
    assert code == 2 and "not a readable ONNX model" in output
    int8 = tmp_path / "int8.onnx"
    code, output = quantize(fp32_model, faces_csv, int8, "--method", "minmax", "--calib-size", "50",
                            "--no-latency")
    assert code == 0, output
    code, output = quantize(int8, faces_csv, out)
    assert code == 2 and "already quantised" in output
    assert not out.exists() and "Traceback" not in output


def test_accuracy_guard_keeps_the_most_harmful_layers_in_fp32(fp32_model: Path, tmp_path: Path) -> None:
    # Calibrating on near-black faces makes every activation range far too small for the test
    # faces, so INT8 clips badly; the guard must keep layers in FP32 until within --max-drop.
    images, labels = synthetic_faces(300, 7, seed=13)
    dark = (images[:150] // 16).astype(np.uint8)
    images = np.concatenate([dark, images[150:]])
    data = write_fer_csv(tmp_path / "dark.csv", images, labels, ["Training"] * 150 + ["PublicTest"] * 150)
    out = tmp_path / "guarded.onnx"
    report_path = tmp_path / "report.json"
    code, output = quantize(fp32_model, data, out, "--method", "minmax", "--calib-size", "50", "--max-drop",
                            "0.01", "--no-latency", "--report-json", str(report_path))
    assert code == 0, output
    report = json.loads(report_path.read_text())
    # Every layer but the first (always FP32) is tried alone in FP32.
    assert len(report["sensitivity"]) == len(weighted_nodes(onnx.load(str(fp32_model)))) - 1
    guarded = [s["layer"] for s in report["sensitivity"] if s["layer"] in report["fp32_layers"]]
    assert guarded, "the guard kept no layer in FP32"
    assert report["drop_points"] <= 0.01
    assert "kept in FP32 to stay within the accuracy bound" in output and guarded[0] in output

    proto = onnx.load(str(out))
    assert sorted(fp32_weighted_nodes(proto)) == sorted(report["fp32_layers"])
    assert json.loads(read_model_metadata(out)["calibration"])["fp32_layers"] == report["fp32_layers"]
    assert tensorrt_violations(proto) == []  # partly-FP32 graphs still follow TensorRT's rules
    assert Target.tensorrt.value == report["target"]


def test_other_calibration_methods_are_tried_before_fp32_layers() -> None:
    assert fallback_methods(Method.entropy) == [Method.percentile, Method.minmax]
    assert fallback_methods(Method.minmax) == [Method.percentile, Method.entropy]
    assert Method.percentile not in fallback_methods(Method.percentile)
