"""PNG figures: learning curves (the paper's Fig. 4) and confusion matrices (Figs. 5-6)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.core.plots import pyplot, save_figure


def plot_learning_curve(history: Sequence[dict[str, Any]], out: str | Path, title: str = "") -> None:
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="PublicTest")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [h["train_acc"] for h in history], label="train (augmented)")
    ax_acc.plot(epochs, [h["val_acc"] for h in history], label="PublicTest")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out)


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str], out: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, as in the paper's Figs. 5-6."""
    plt = pyplot()
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(class_names), 0.8 + 0.75 * len(class_names)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                f"{100 * norm[i, j]:.0f}%\n{cm[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, out)
