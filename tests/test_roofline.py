"""Roofline arithmetic against a hand count of the default model (about 96M multiply-adds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_edge.bench.jetson_specs import JETSONS, jetson_spec
from fer_edge.bench.roofline import layer_bounds, layers_from_onnx, total_bound_s, total_macs
from fer_edge.core.errors import FerEdgeError

torch = pytest.importorskip("torch")
from fer_edge.model.net import ModelConfig, build_model  # noqa: E402 - needs torch


def hand_count(config: ModelConfig) -> tuple[int, list[int]]:
    """Conv MACs = H*W*Cout*Cin*k*k ('same' padding keeps H, W); FC MACs = in*out."""
    k, size, cin, per_layer = config.kernel_size, 48, 1, []
    for i in range(config.depth):
        cout = 32 * 2**i
        per_layer.append(size * size * cout * cin * k * k)
        if i > 0:
            size //= 2  # a 2x2 max-pool after every conv but the first
        cin = cout
    width = cin * size * size  # 1024 * 1 * 1 for the default model
    for out in (512, 512, 512, config.num_classes):
        per_layer.append(width * out)
        width = out
    return sum(per_layer), per_layer


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import warnings

    path = tmp_path_factory.mktemp("roofline") / "default.onnx"
    model = build_model(ModelConfig()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notes
        torch.onnx.export(
            model,
            torch.zeros(1, 1, 48, 48),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        )
    return path


def test_default_model_macs_match_the_hand_count(default_onnx: Path) -> None:
    config = ModelConfig()
    expected, per_layer = hand_count(config)
    # 48*48*32*1*4 + 5 * 18,874,368 (each later conv: H*W halves, Cin and Cout double) + FC layers
    assert expected == 294_912 + 5 * 18_874_368 + 1024 * 512 + 512 * 512 * 2 + 512 * 7 == 95_718_912
    layers = layers_from_onnx(default_onnx)
    assert [layer.macs for layer in layers] == per_layer
    assert total_macs(layers) == expected
    # Weight count equals the model's conv and linear weights (BN and bias parameters excluded).
    model = build_model(config)
    weights = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1)
    assert sum(layer.weights for layer in layers) == weights


def test_bounds_are_the_max_of_compute_and_memory_time(default_onnx: Path) -> None:
    layers = layers_from_onnx(default_onnx)
    nano = jetson_spec("orin-nano")
    assert (
        nano.int8_dense_tops == 20.0 and nano.fp16_dense_tflops == 10.0 and nano.memory_bandwidth_gbs == 68.0
    )
    conv2 = layers[1]
    (b,) = layer_bounds([conv2], nano, "int8")
    # conv2: 32x48x48 in, 64x48x48 out, 64*32*2*2 weights, 64 biases.
    moved = 8192 * 1 + 64 * 4 + (32 * 48 * 48 + 64 * 48 * 48) * 1
    assert b.bytes == moved
    assert b.compute_s == pytest.approx(2 * 18_874_368 / 20e12)
    assert b.memory_s == pytest.approx(moved / 68e9)
    assert b.bound_s == max(b.compute_s, b.memory_s) and b.limit == "memory"
    fp16 = layer_bounds([conv2], nano, "fp16")[0]
    assert fp16.bytes == 8192 * 2 + 64 * 4 + (32 * 48 * 48 + 64 * 48 * 48) * 2


def test_faster_devices_and_int8_give_lower_bounds(default_onnx: Path) -> None:
    layers = layers_from_onnx(default_onnx)
    bound = {
        (k, p): total_bound_s(layer_bounds(layers, JETSONS[k], p)) for k in JETSONS for p in ("int8", "fp16")
    }
    for key in JETSONS:
        assert bound[(key, "int8")] < bound[(key, "fp16")]
    assert bound[("agx-orin", "int8")] < bound[("orin-nx", "int8")] < bound[("orin-nano", "int8")]
    # Batching amortises the weights: per-image bound at batch 64 is below batch 1.
    per_image_64 = total_bound_s(layer_bounds(layers, JETSONS["orin-nano"], "int8", 64)) / 64
    assert per_image_64 < bound[("orin-nano", "int8")]


def test_unknown_device_is_a_user_error() -> None:
    with pytest.raises(FerEdgeError, match="orin-nano"):
        jetson_spec("xavier")
