"""Score any fer-edge model (``.pt``, ``.onnx``, ``.engine``) on a split of a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from fer_edge.core.errors import FerEdgeError
from fer_edge.data.core import FaceData
from fer_edge.model.scoring import accuracy, classification_report, softmax
from fer_edge.runtime.classifier import Backend


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


# Images per split of the reference data (docs/architecture.md); a recorded figure measured on any other
# number of images is not the model's headline figure.
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "fer2013": {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589},
    "ferplus": {"Training": 25060, "PublicTest": 3199, "PrivateTest": 3153},
}


@dataclass(frozen=True)
class Measurement:
    """What a recorded accuracy was measured on."""

    split: str
    accuracy: float
    images: int
    data: str  # the data file's name
    dataset: str

    @property
    def full_split(self) -> bool:
        return SPLIT_SIZES.get(self.dataset, {}).get(self.split) == self.images

    def describe(self) -> str:
        whole = "the full split" if self.full_split else "not the full split"
        return f"{self.split}, {self.images} images of {self.data} ({whole})"


def check_recordable(path: Path) -> None:
    """Refuse ``--record`` before any work: a file type it cannot write, or the installed package."""
    import fer_edge
    from fer_edge.core.paths import check_writable, inside

    if path.suffix not in (".pt", ".onnx"):
        raise FerEdgeError("--record works on .pt and .onnx files", path=path)
    package = Path(fer_edge.__file__).parent
    if inside(path, package):
        raise FerEdgeError(
            f"--record would rewrite a file inside the installed fer-edge package ({package}); copy the "
            "model elsewhere and evaluate the copy",
            path=path,
        )
    check_writable("MODEL (--record)", path)


def record_accuracy(path: Path, measured: Measurement, allow_subset: bool = False) -> None:
    """Store a measured accuracy, and what it was measured on, in the model file itself.

    A figure from fewer (or other) images than the full split never replaces a recorded figure
    unless ``allow_subset``.
    """
    if path.suffix == ".pt":
        record_in_checkpoint(path, measured, allow_subset)
    elif path.suffix == ".onnx":
        record_in_onnx(path, measured, allow_subset)
    else:
        raise FerEdgeError("--record works on .pt and .onnx files", path=path)


def recorded_metrics(path: Path) -> dict[str, Any]:
    """The ``metrics`` a model file holds now (empty when none or unreadable as a dict)."""
    import json

    if path.suffix == ".pt":
        from fer_edge.model.checkpoint import load_checkpoint

        metrics: Any = load_checkpoint(path).get("metrics")
    else:
        from fer_edge.model.onnx_contract import read_model_metadata

        try:
            metrics = json.loads(read_model_metadata(path).get("metrics", "{}"))
        except (ValueError, RecursionError):
            metrics = {}
    return metrics if isinstance(metrics, dict) else {}


def check_subset_record(
    path: Path, measured: Measurement, allow_subset: bool, metrics: dict[str, Any] | None = None
) -> None:
    """Refuse to replace a recorded figure with one from other than the full split (unless allowed).

    Called before the evaluation too (the image count is known once the data is read), so the
    refusal costs no inference.
    """
    if metrics is None:
        metrics = recorded_metrics(path)
    old = metrics.get(measured.split)
    if old is not None and not measured.full_split and not allow_subset:
        full = SPLIT_SIZES.get(measured.dataset, {}).get(measured.split, "?")
        raise FerEdgeError(
            f"not recorded: {measured.split} here has {measured.images} images, the full split {full}; the "
            f"recorded {measured.split} figure {old} stays (pass --record-subset to replace it anyway)",
            path=path,
        )


def _updated_metrics(metrics: dict[str, Any], measured: Measurement, allow_subset: bool, path: Path) -> dict[str, Any]:
    check_subset_record(path, measured, allow_subset, metrics)
    metrics = dict(metrics)
    metrics[measured.split] = round(measured.accuracy, 2)
    on = metrics.get("measured_on")
    on = dict(on) if isinstance(on, dict) else {}
    on[measured.split] = {"images": measured.images, "data": measured.data, "full_split": measured.full_split}
    metrics["measured_on"] = on
    return metrics


def record_in_onnx(path: Path, measured: Measurement, allow_subset: bool = False) -> None:
    """Update the ``metrics`` metadata of an ONNX model with a figure measured on that very file.

    An INT8 model inherits its FP32 parent's figures at quantisation; recording replaces them
    with its own, so nobody quotes the FP32 accuracy for the INT8 file.
    """
    import json

    import onnx

    from fer_edge.core.atomic import atomic_path
    from fer_edge.model.onnx_contract import get_metadata, load_onnx, set_metadata

    model = load_onnx(path)
    meta = get_metadata(model)
    try:
        metrics = json.loads(meta.get("metrics", "{}"))
    except (ValueError, RecursionError):
        metrics = {}
    if not isinstance(metrics, dict):
        metrics = {}
    metrics = _updated_metrics(metrics, measured, allow_subset, path)
    own = metrics.get("measured_on_this_file")
    own = list(own) if isinstance(own, list) else []
    if measured.split not in own:
        own.append(measured.split)
    metrics["measured_on_this_file"] = own
    set_metadata(model, {"metrics": json.dumps(metrics, separators=(",", ":"))})
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def record_in_checkpoint(path: Path, measured: Measurement, allow_subset: bool = False) -> None:
    """Store a measured accuracy in a checkpoint's ``metrics`` (export carries it into the ONNX)."""
    from fer_edge.model.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(path)
    metrics = ckpt.get("metrics")
    ckpt["metrics"] = _updated_metrics(metrics if isinstance(metrics, dict) else {}, measured, allow_subset, path)
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("format", "format_version", "fer_edge_version")})
