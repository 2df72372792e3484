"""TensorRT Q/DQ rules on small hand-built graphs: a compliant one, and one per planted violation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.onnx_model import contract_violations
from fer_edge.onnx_rules import tensorrt_violations

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


def test_uint8_activation_is_caught_without_a_zero_point() -> None:
    model = qdq_conv_graph()
    q = next(n for n in model.graph.node if n.name == "q_in")
    del q.input[2]  # QuantizeLinear without a zero point outputs uint8
    assert any("uint8" in p for p in tensorrt_violations(model))


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
