"""The one in-memory form every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import SPLITS

IMAGE_SIZE = 48


@dataclass
class FaceData:
    """Faces of one dataset: uint8 ``images [N,48,48]``, int64 ``labels [N]``, a split per image.

    ``rows`` are the images' row indices in the source file (0-based, header excluded), so a
    subset can be written down (calibration manifests) and read back. ``soft`` holds a
    per-image label distribution ``[N, C]`` where the dataset has one (FERPlus votes).
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    class_names: tuple[str, ...]
    dataset: str
    source: str
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    soft: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.rows.size == 0 and n:
            self.rows = np.arange(n, dtype=np.int64)
        assert self.images.dtype == np.uint8 and self.images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE)
        assert len(self.labels) == n and len(self.splits) == n and len(self.rows) == n

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: np.ndarray) -> FaceData:
        return FaceData(
            images=self.images[index],
            labels=self.labels[index],
            splits=self.splits[index],
            class_names=self.class_names,
            dataset=self.dataset,
            source=self.source,
            rows=self.rows[index],
            soft=None if self.soft is None else self.soft[index],
        )

    def split(self, name: str) -> FaceData:
        """The images of one split; an unknown or empty split is a user error."""
        if name not in SPLITS:
            raise FerEdgeError(f"unknown split {name!r}; choose one of: {', '.join(SPLITS)}")
        part = self.subset(np.flatnonzero(self.splits == name))
        if len(part) == 0:
            raise FerEdgeError(f"split {name} is empty", path=self.source)
        return part

    def has_split(self, name: str) -> bool:
        return bool(np.any(self.splits == name))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}
