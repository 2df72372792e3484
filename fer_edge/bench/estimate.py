"""``fer-edge bench --estimate DEVICE``: which layers to count, and the table."""

from __future__ import annotations

from pathlib import Path

from fer_edge.bench.roofline import LayerCost, layers_from_config, layers_from_onnx
from fer_edge.errors import FerEdgeError


def estimate_layers(models: list[Path]) -> tuple[list[LayerCost], str]:
    """Layers of the one given ONNX model, else the shipped FP32 model, else the default config."""
    onnx_models = [m for m in models if m.suffix.lower() == ".onnx"]
    if len(onnx_models) > 1:
        raise FerEdgeError(
            "--estimate takes one ONNX model (the layer shapes are the same for every precision)"
        )
    if onnx_models:
        return layers_from_onnx(onnx_models[0]), str(onnx_models[0])
    if models:
        raise FerEdgeError("--estimate reads an ONNX model; give the .onnx the engine was built from")
    from fer_edge.weights import WEIGHTS_DIR

    shipped = WEIGHTS_DIR / "fer2013.onnx"
    if shipped.is_file():
        return layers_from_onnx(shipped), str(shipped)
    try:
        from fer_edge.model import ModelConfig
    except ImportError:
        raise FerEdgeError(
            "no shipped fer2013.onnx and no torch to read the default model config; pass --models model.onnx"
        ) from None
    return layers_from_config(ModelConfig()), "the default ModelConfig (salimov-cnn-d6-k2)"
