"""Checkpoint → FP32 ONNX that follows the model-file contract, with a parity check.

The TorchScript exporter (``dynamo=False``) is used: it handles this plain CNN exactly, folds
BatchNorm into the convolutions in eval mode and needs no extra packages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError
from fer_edge.data.core import FaceData
from fer_edge.model.onnx_contract import (
    IMAGE_SIZE,
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    contract_metadata,
    contract_violations,
    set_metadata,
)

PARITY_MAX_ABS = 1e-4
PARITY_MIN_AGREEMENT = 0.999
GENERATED_PARITY_IMAGES = 256


@dataclass(frozen=True)
class ParityReport:
    images: int
    source: str
    max_abs_diff: float
    agreement: float
    torch_accuracy: float | None = None
    onnx_accuracy: float | None = None

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= PARITY_MAX_ABS and self.agreement >= PARITY_MIN_AGREEMENT


def generated_faces(n: int = GENERATED_PARITY_IMAGES, seed: int = 0) -> np.ndarray:
    """A fixed set of face-like uint8 48x48 inputs: smooth blobs, gradients, noise, and extremes.

    Used for the parity check when no real data is given: it covers the full 0..255 range.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    out = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(10, 38, size=2)
        blob = rng.uniform(80, 220) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(30, 200))
        grad = rng.uniform(-1.5, 1.5) * xx + rng.uniform(-1.5, 1.5) * yy
        noise = rng.normal(rng.uniform(20, 120), rng.uniform(2, 40), size=(IMAGE_SIZE, IMAGE_SIZE))
        out[i] = np.clip(blob + grad + noise, 0, 255).astype(np.uint8)
    out[: min(n, 1)] = 0  # the extremes of the pixel range
    out[1 : min(n, 2)] = 255
    return out


def ckpt_metrics_json(ckpt: dict[str, Any]) -> str | None:
    """The checkpoint's recorded metrics as compact JSON (numbers and strings only), or None."""
    metrics = ckpt.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return None

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        try:
            return float(value)  # numpy / torch scalars
        except (TypeError, ValueError):
            return str(value)

    return json.dumps(clean(metrics), separators=(",", ":"))


def onnx_logits(model_path: str | Path, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run an ONNX model on uint8 ``[N,48,48]`` images with ONNX Runtime (CPU)."""
    from fer_edge.runtime.ort_session import cpu_session

    session = cpu_session(model_path)
    parts = []
    for start in range(0, len(images), batch):
        x = images[start : start + batch, None].astype(np.float32)
        parts.append(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0])
    return np.concatenate(parts)


def torch_logits(model: Any, images: np.ndarray, batch: int = 256) -> np.ndarray:
    import warnings

    import torch

    parts = []
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*padding='same'.*")
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start : start + batch, None].astype(np.float32))
            parts.append(model(x).numpy())
    return np.concatenate(parts)


def parity(model: Any, onnx_path: str | Path, images: np.ndarray, source: str,
           labels: np.ndarray | None = None) -> ParityReport:
    """Compare PyTorch and ONNX Runtime logits on the same images."""
    ref = torch_logits(model, images)
    got = onnx_logits(onnx_path, images)
    agree = float(np.mean(ref.argmax(1) == got.argmax(1)))
    torch_acc = onnx_acc = None
    if labels is not None:
        torch_acc = float(np.mean(ref.argmax(1) == labels))
        onnx_acc = float(np.mean(got.argmax(1) == labels))
    return ParityReport(len(images), source, float(np.abs(ref - got).max()), agree, torch_acc, onnx_acc)


def _export_graph(model: Any, path: Path, opset: int) -> None:
    import warnings

    import torch

    dummy = torch.full((2, 1, IMAGE_SIZE, IMAGE_SIZE), 128.0)
    with warnings.catch_warnings():
        # The legacy exporter's deprecation notice and the even-kernel 'same' padding note.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def export_model(
    model: Any,
    out: str | Path,
    labels: tuple[str, ...] | list[str],
    dataset: str,
    arch: str,
    extra_metadata: dict[str, str] | None = None,
    parity_images: np.ndarray | None = None,
    parity_labels: np.ndarray | None = None,
    parity_source: str = "generated",
    opset: int = OPSET,
) -> ParityReport:
    """Export an eval-mode ``FerCNN`` to ``out``; nothing is written unless parity holds."""
    import onnx

    model = model.eval()
    if parity_images is None:
        parity_images = generated_faces()
    with atomic_path(out) as tmp:
        _export_graph(model, tmp, opset)
        proto = onnx.load(str(tmp))
        meta = {"precision": "fp32", **(extra_metadata or {})}
        set_metadata(proto, contract_metadata(labels, dataset, arch, meta))
        proto.producer_name = "fer-edge"
        onnx.checker.check_model(proto, full_check=True)
        problems = contract_violations(proto)
        if problems:  # a bug in this exporter, not user input: say what broke
            raise FerEdgeError("exported model breaks the contract: " + "; ".join(problems), path=out)
        onnx.save(proto, str(tmp))
        report = parity(model, tmp, parity_images, parity_source, parity_labels)
        if not report.ok:
            raise FerEdgeError(
                f"ONNX output differs from PyTorch: max |dlogit| {report.max_abs_diff:.2e} "
                f"(limit {PARITY_MAX_ABS:.0e}), top-1 agreement {report.agreement:.2%}; nothing written",
                path=out,
            )
    return report


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    data: FaceData | None = None,
    max_parity_images: int = 2000,
    use_ema: bool = True,
) -> ParityReport:
    """Export a fer-edge checkpoint; parity is checked on ``data``'s PublicTest (or generated faces)."""
    from fer_edge.model.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, use_ema=use_ema, path=checkpoint)  # names the file when it does not fit
    labels = list(ckpt["labels"])
    arch = str(ckpt.get("arch") or model.config.arch)
    extra: dict[str, str] = {}
    metrics = ckpt_metrics_json(ckpt)
    if metrics:
        extra["metrics"] = metrics
    if ckpt.get("epoch") is not None:
        extra["epoch"] = str(ckpt["epoch"])
    images = labels_arr = None
    source = "generated"
    if data is not None:
        if list(data.class_names) != labels:
            raise FerEdgeError(f"data is {data.dataset} ({len(data.class_names)} classes) but the checkpoint "
                               f"is {ckpt['dataset']} ({len(labels)} classes)", path=data.source)
        split = "PublicTest" if data.has_split("PublicTest") else "Training"
        part = data.split(split)
        if len(part) > max_parity_images:
            part = part.subset(np.arange(max_parity_images))
        images, labels_arr, source = part.images, part.labels, split
    return export_model(model, out, labels, str(ckpt["dataset"]), arch, extra, images, labels_arr, source)

