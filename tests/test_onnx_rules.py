"""TensorRT Q/DQ rules on small hand-built graphs: a compliant one, and one per planted violation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from fer_edge.build.qdq_rules import max_parser_opset, placement_warnings, tensorrt_violations
from fer_edge.cli import app
from fer_edge.model.onnx_contract import contract_violations

META = {"labels": json.dumps(["a", "b", "c"]), "dataset": "fer2013", "arch": "test", "fer_edge_version": "0"}


def qdq_conv_graph(
    act_zp_dtype: type = np.int8,
    act_zp: int = 0,
    per_channel_weights: bool = True,
    quantised_bias: bool = False,
    qlinear_conv: bool = False,
    weight_axis: int = 0,
    activation_scale_per_channel: bool = False,
    opset: int = 17,
) -> onnx.ModelProto:
    """input [N,1,48,48] → Q/DQ → Conv(3 filters, 48x48 kernel) with Q/DQ weights → Flatten → logits [N,3]."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, size=(3, 1, 48, 48)).astype(np.int8)
    w_scale = np.full(3 if per_channel_weights else (), 0.01, dtype=np.float32)
    a_scale = np.full(3 if activation_scale_per_channel else (), 0.5, dtype=np.float32)
    inits = [
        numpy_helper.from_array(weight, "w_q"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(w_scale.shape, dtype=np.int8), "w_zp"),
        numpy_helper.from_array(a_scale, "a_scale"),
        numpy_helper.from_array(np.full(a_scale.shape, act_zp, dtype=act_zp_dtype), "a_zp"),
    ]
    nodes = []
    if qlinear_conv:
        inits += [numpy_helper.from_array(np.float32(0.1), "y_scale"),
                  numpy_helper.from_array(np.int8(0), "y_zp")]
        nodes += [
            helper.make_node("QuantizeLinear", ["input", "a_scale", "a_zp"], ["x_q"], name="q_in"),
            helper.make_node("QLinearConv",
                             ["x_q", "a_scale", "a_zp", "w_q", "w_scale", "w_zp", "y_scale", "y_zp"],
                             ["y_q"], name="qlinear_conv"),
            helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["conv"], name="dq_out"),
        ]
    else:
        conv_inputs = ["x_dq", "w_dq"]
        nodes += [
            helper.make_node("QuantizeLinear", ["input", "a_scale", "a_zp"], ["x_q"], name="q_in"),
            helper.make_node("DequantizeLinear", ["x_q", "a_scale", "a_zp"], ["x_dq"], name="dq_in"),
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w_dq"], name="dq_w",
                             axis=weight_axis),
        ]
        if quantised_bias:
            inits += [numpy_helper.from_array(np.array([5, -3, 7], dtype=np.int32), "b_q"),
                      numpy_helper.from_array(np.full(3, 0.005, dtype=np.float32), "b_scale")]
            nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b_dq"], name="dq_bias"))
            conv_inputs.append("b_dq")
        nodes.append(helper.make_node("Conv", conv_inputs, ["conv"], name="conv"))
    nodes.append(helper.make_node("Flatten", ["conv"], ["logits"], name="flatten"))
    graph = helper.make_graph(
        nodes,
        "planted",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    for k, v in META.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    return model


def test_compliant_graph_has_no_violations() -> None:
    model = qdq_conv_graph()
    onnx.checker.check_model(model)
    assert tensorrt_violations(model) == []
    assert contract_violations(model) == []


@pytest.mark.parametrize(
    "planted,expected",
    [
        ({"act_zp": 3}, "is not 0 (asymmetric"),
        ({"act_zp_dtype": np.uint8, "act_zp": 128}, "uint8 quantisation"),
        ({"per_channel_weights": False}, "per-tensor weight scale"),
        ({"quantised_bias": True}, "quantised (int32) bias"),
        ({"qlinear_conv": True}, "operator QLinearConv is not allowed"),
        ({"weight_axis": 1}, "expected axis 0"),
        ({"activation_scale_per_channel": True}, "per-channel scale (3 values) on an activation"),
        ({"opset": 11}, "opset 11 is older than 13"),
    ],
)
def test_each_planted_violation_is_caught(planted: dict[str, object], expected: str) -> None:
    problems = tensorrt_violations(qdq_conv_graph(**planted))  # type: ignore[arg-type]
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("node", ["q_in", "dq_in", "dq_w"])
def test_a_missing_zero_point_is_a_violation(node: str) -> None:
    model = qdq_conv_graph()
    qdq = next(n for n in model.graph.node if n.name == node)
    del qdq.input[2]  # optional in ONNX; TensorRT's rules want zero point 0 given explicitly
    problems = tensorrt_violations(model)
    assert any(f"'{node}': no explicit zero point" in p for p in problems), problems


@pytest.mark.parametrize(("name", "value"), [("a_scale", 0.0), ("a_scale", -0.5), ("w_scale", -0.01),
                                             ("a_scale", float("nan"))])
def test_a_non_positive_scale_is_a_violation(name: str, value: float) -> None:
    model = qdq_conv_graph()
    tensor = next(t for t in model.graph.initializer if t.name == name)
    array = numpy_helper.to_array(tensor).copy()
    array.reshape(-1)[0] = value
    tensor.CopyFrom(numpy_helper.from_array(array, name))
    problems = tensorrt_violations(model)
    assert any(f"scale '{name}' has non-positive or non-finite values" in p for p in problems), problems


@pytest.mark.parametrize(("opset", "target", "ok"), [
    (17, (8, 5), True), (18, (8, 5), False), (17, (8, 6), True), (19, (9, 0), True),
    (20, (10, 3), True), (21, (10, 3), False), (25, (11, 0), True),
])
def test_opset_above_the_target_parser_is_a_violation(opset: int, target: tuple[int, int], ok: bool) -> None:
    problems = [p for p in tensorrt_violations(qdq_conv_graph(opset=opset), target) if "opset" in p]
    assert (problems == []) is ok, problems
    if not ok:
        assert f"opset {opset} is newer than TensorRT {target[0]}.{target[1]}" in problems[0]


def test_max_parser_opset_table() -> None:
    assert max_parser_opset((8, 5)) == 17 and max_parser_opset((10, 3)) == 20
    with pytest.raises(ValueError, match="older"):
        max_parser_opset((8, 4))


def badly_placed_graph() -> onnx.ModelProto:
    """input → Conv → Q/DQ → Relu → Flatten → Q/DQ → logits: the old shipped placement in small."""
    weight = np.full((3, 1, 48, 48), 0.01, dtype=np.float32)
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.float32(0.5), "s"),
             numpy_helper.from_array(np.int8(0), "zp")]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["conv"], name="conv"),
        helper.make_node("QuantizeLinear", ["conv", "s", "zp"], ["conv_q"], name="q_conv"),
        helper.make_node("DequantizeLinear", ["conv_q", "s", "zp"], ["conv_dq"], name="dq_conv"),
        helper.make_node("Relu", ["conv_dq"], ["relu"], name="relu"),
        helper.make_node("Flatten", ["relu"], ["flat"], name="flatten"),
        helper.make_node("QuantizeLinear", ["flat", "s", "zp"], ["flat_q"], name="q_out"),
        helper.make_node("DequantizeLinear", ["flat_q", "s", "zp"], ["logits"], name="dq_out"),
    ]
    graph = helper.make_graph(
        nodes, "misplaced",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for k, v in {**META, "calibration": "{}"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    return model


def test_placement_warnings() -> None:
    model = badly_placed_graph()
    assert tensorrt_violations(model) == []  # it builds ...
    warnings = placement_warnings(model)  # ... but against NVIDIA's guidance
    assert len(warnings) == 2
    assert "Q/DQ between Conv 'conv' and its activation Relu 'relu'" in warnings[0]
    assert "graph output 'logits' is quantised (DequantizeLinear 'dq_out')" in warnings[1]
    assert placement_warnings(qdq_conv_graph()) == []


def test_check_onnx_cli_warns_on_placement_and_takes_a_trt_version(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "misplaced.onnx"
    onnx.save(badly_placed_graph(), str(path))
    result = runner.invoke(app, ["check-onnx", str(path)])
    assert result.exit_code == 0, result.output  # warnings do not fail
    warned = [line for line in result.output.splitlines() if "warning: tensorrt placement" in line]
    assert len(warned) == 2 and "2 placement warning(s)" in result.output

    model = badly_placed_graph()
    model.opset_import[0].version = 18
    newer = tmp_path / "opset18.onnx"
    onnx.save(model, str(newer))
    result = runner.invoke(app, ["check-onnx", str(newer)])
    assert result.exit_code == 1 and "opset 18 is newer than TensorRT 8.5" in result.output
    result = runner.invoke(app, ["check-onnx", str(newer), "--trt-version", "10.3"])
    assert result.exit_code == 0 and "TensorRT 10.3 Q/DQ rules" in result.output
    result = runner.invoke(app, ["check-onnx", str(newer), "--trt-version", "ten"])
    assert result.exit_code == 2 and "--trt-version" in result.output and "Traceback" not in result.output


def test_check_onnx_cli_lists_each_violation(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.onnx"
    onnx.save(qdq_conv_graph(), str(good))
    result = runner.invoke(app, ["check-onnx", str(good)])
    # An INT8 model must also say how it was calibrated.
    assert result.exit_code == 1 and "calibration" in result.output

    model = qdq_conv_graph(act_zp=3, quantised_bias=True)
    entry = model.metadata_props.add()
    entry.key, entry.value = "calibration", "{}"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    result = runner.invoke(app, ["check-onnx", str(bad)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith(f"{bad}: tensorrt:")]
    assert len(lines) >= 3  # two asymmetric Q/DQ + the quantised bias
    assert any("int32" in line for line in lines)


def test_check_onnx_cli_rejects_non_contract_models(tmp_path: Path) -> None:
    runner = CliRunner()
    model = qdq_conv_graph()
    model.graph.input[0].name = "images"
    path = tmp_path / "renamed.onnx"
    onnx.save(model, str(path))
    result = runner.invoke(app, ["check-onnx", str(path), "--rules", "none"])
    assert result.exit_code == 1 and "no graph input named 'input'" in result.output

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    result = runner.invoke(app, ["check-onnx", str(junk)])
    assert result.exit_code == 2 and "not a readable ONNX model" in result.output
    assert "Traceback" not in result.output
