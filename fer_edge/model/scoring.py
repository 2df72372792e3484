"""Classification metrics on numpy arrays (no torch)."""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits ``[..., C]`` (float64, numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float(100.0 * np.mean(labels == preds)) if len(labels) else float("nan")


def classification_report(labels: np.ndarray, preds: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and macro averages (percent)."""
    cm = confusion_matrix(labels, preds, len(class_names))
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    per_class = {
        name: {
            "precision": round(100 * float(precision[i]), 2),
            "recall": round(100 * float(recall[i]), 2),
            "f1": round(100 * float(f1[i]), 2),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    present = support > 0
    return {
        "accuracy": round(accuracy(labels, preds), 2),
        "n": int(len(labels)),
        "macro_precision": round(100 * float(precision[present].mean()), 2),
        "macro_recall": round(100 * float(recall[present].mean()), 2),
        "macro_f1": round(100 * float(f1[present].mean()), 2),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }
