"""Class orders of the two datasets (docs/architecture.md); output index i of a model is label i."""

from __future__ import annotations

FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_LABELS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
DATASETS: dict[str, tuple[str, ...]] = {"fer2013": FER2013_LABELS, "ferplus": FERPLUS_LABELS}
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")


def labels_for(dataset: str) -> tuple[str, ...]:
    from fer_edge.core.errors import FerEdgeError

    try:
        return DATASETS[dataset]
    except KeyError:
        raise FerEdgeError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}") from None
