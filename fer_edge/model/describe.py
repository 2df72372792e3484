"""What a model file is: architecture, dataset, labels, parameters, recorded metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_edge.core.paths import require_file


def checkpoint_info(path: Path) -> dict[str, Any]:
    from fer_edge.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    n_params = sum(
        int(v.numel())
        for k, v in ckpt["state_dict"].items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    return {
        "file": str(path),
        "format": "pytorch checkpoint",
        "arch": ckpt.get("arch"),
        "dataset": ckpt["dataset"],
        "labels": list(ckpt["labels"]),
        "parameters": n_params,
        "epoch": ckpt.get("epoch"),
        "metrics": ckpt.get("metrics", {}),
        "model_config": ckpt["model_config"],
        "train_args": ckpt.get("train_args", {}),
        "fer_edge_version": ckpt.get("fer_edge_version"),
        "size_mb": round(path.stat().st_size / 1e6, 2),
    }


def onnx_info(path: Path) -> dict[str, Any]:
    import numpy as np
    import onnx.numpy_helper

    from fer_edge.model.formats import LAYOUTS, onnx_model_facts
    from fer_edge.model.onnx_contract import get_metadata, labels_from_metadata, load_onnx, metadata_json

    model = load_onnx(path)
    meta = get_metadata(model)
    labels = labels_from_metadata(meta, path=path)
    precision, layout = onnx_model_facts(model)
    # Parameters are counted on float tensors and int8 weights, not on Q/DQ scales and zero points.
    n_params = 0
    for init in model.graph.initializer:
        arr = onnx.numpy_helper.to_array(init)
        if arr.ndim >= 1 and arr.size > 1 and arr.dtype in (np.float32, np.float16, np.int8):
            n_params += int(arr.size)
    info: dict[str, Any] = {
        "file": str(path),
        "format": "onnx",
        "arch": meta.get("arch"),
        "dataset": meta.get("dataset"),
        "labels": list(labels),
        "parameters": n_params,
        "precision": precision,
        **({"layout": LAYOUTS[layout][1]} if layout else {}),
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "size_mb": round(path.stat().st_size / 1e6, 2),
        "fer_edge_version": meta.get("fer_edge_version"),
        "producer": f"{model.producer_name} {model.producer_version}".strip() or None,
    }
    for key in ("metrics", "calibration"):
        if key in meta:
            info[key] = metadata_json(meta, key, path, keep_invalid=True)
    return info


def engine_info(path: Path) -> dict[str, Any]:
    from dataclasses import asdict

    from fer_edge.model.engine_sidecar import read_sidecar

    require_file(path, "model file")
    # the checked reader: a binary, non-object or incomplete sidecar is a one-line error
    sidecar = asdict(read_sidecar(path))
    return {"file": str(path), "format": "tensorrt engine", "size_mb": round(path.stat().st_size / 1e6, 2), **sidecar}


def model_info(path: Path) -> dict[str, Any]:
    from fer_edge.model.formats import model_format

    kind = model_format(path).kind
    require_file(path, "model file")
    return {"pt": checkpoint_info, "onnx": onnx_info, "engine": engine_info}[kind](path)
