"""Score any fer-edge model (``.pt``, ``.onnx``, ``.engine``) on a split of a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from fer_edge.backends import Backend
from fer_edge.data.core import FaceData
from fer_edge.errors import FerEdgeError
from fer_edge.metrics import accuracy, classification_report, softmax


def predict(
    backend: Backend, images: np.ndarray, batch_size: int = 256, flip: bool = False, progress: Progress | None = None
) -> np.ndarray:
    """Logits ``[N, C]`` for uint8 faces ``[N, 48, 48]``, one batch at a time."""
    out = []
    task = progress.add_task("evaluating", total=len(images)) if progress else None
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size]
        if flip:
            batch = batch[:, :, ::-1]
        out.append(backend.infer(np.ascontiguousarray(batch)))
        if progress is not None and task is not None:
            progress.advance(task, len(batch))
    return np.concatenate(out) if out else np.zeros((0, backend.num_classes), np.float32)


def evaluate_model(
    backend: Backend,
    data: FaceData,
    batch_size: int = 256,
    tta: bool = False,
    progress: Progress | None = None,
    exclude: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy and per-class figures on ``data``; with ``tta`` also the flip-averaged accuracy.

    ``exclude`` (bool mask over ``data``, e.g. the test images copied in Training) adds the
    accuracies on the images it leaves in, as ``*_without_train_duplicates``.
    """
    if tuple(backend.labels) != tuple(data.class_names):
        raise FerEdgeError(
            f"model labels {list(backend.labels)} do not match the {data.dataset} classes {list(data.class_names)}",
            path=backend.path,
        )
    logits = predict(backend, data.images, batch_size, progress=progress)
    report = classification_report(data.labels, logits.argmax(1), data.class_names)
    preds = {"accuracy": logits.argmax(1)}
    if tta:
        flipped = predict(backend, data.images, batch_size, flip=True, progress=progress)
        preds["accuracy_flip_tta"] = (softmax(logits) + softmax(flipped)).argmax(1)
        report["accuracy_flip_tta"] = round(float(100 * np.mean(preds["accuracy_flip_tta"] == data.labels)), 2)
    if exclude is not None:
        keep = ~exclude
        report["train_duplicates"] = int(exclude.sum())
        report["n_without_train_duplicates"] = int(keep.sum())
        for key, pred in preds.items():
            report[f"{key}_without_train_duplicates"] = round(accuracy(data.labels[keep], pred[keep]), 2)
    return report


def record_accuracy(path: Path, split: str, accuracy: float) -> None:
    """Store a measured accuracy in the model file itself (``.pt`` metrics or ONNX metadata)."""
    if path.suffix == ".pt":
        record_in_checkpoint(path, split, accuracy)
    elif path.suffix == ".onnx":
        record_in_onnx(path, split, accuracy)
    else:
        raise FerEdgeError("--record works on .pt and .onnx files", path=path)


def record_in_onnx(path: Path, split: str, accuracy: float) -> None:
    """Update the ``metrics`` metadata of an ONNX model with a figure measured on that very file.

    An INT8 model inherits its FP32 parent's figures at quantisation; recording replaces them
    with its own, so nobody quotes the FP32 accuracy for the INT8 file.
    """
    import json

    import onnx

    from fer_edge.atomic import atomic_path
    from fer_edge.onnx_model import get_metadata, load_onnx, set_metadata

    model = load_onnx(path)
    meta = get_metadata(model)
    try:
        metrics = json.loads(meta.get("metrics", "{}"))
    except json.JSONDecodeError:
        metrics = {}
    metrics[split] = round(accuracy, 2)
    metrics.setdefault("measured_on_this_file", [])
    if split not in metrics["measured_on_this_file"]:
        metrics["measured_on_this_file"].append(split)
    set_metadata(model, {"metrics": json.dumps(metrics, separators=(",", ":"))})
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def record_in_checkpoint(path: Path, split: str, accuracy: float) -> None:
    """Store a measured accuracy in a checkpoint's ``metrics`` (export carries it into the ONNX)."""
    from fer_edge.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(path)
    ckpt.setdefault("metrics", {})[split] = round(accuracy, 2)
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("format", "format_version", "fer_edge_version")})
