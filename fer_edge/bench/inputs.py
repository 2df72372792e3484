"""The faces every row is fed: one file, written once by the parent, read by every child.

With ``--data`` they are the real faces of the requested split (and their labels, for accuracy);
without, a fixed set of generated face-like images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError

SYNTHETIC_IMAGES = 256
TIMING_IMAGES = 256  # the faces cycled through by the timing loops


@dataclass
class BenchInputs:
    images: np.ndarray  # uint8 [N, 48, 48]
    labels: np.ndarray | None  # int64 [N] when accuracy can be measured
    dataset: str | None
    split: str | None
    source: str

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def timing_images(self) -> np.ndarray:
        return self.images[:TIMING_IMAGES]

    def save(self, path: Path) -> Path:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                images=self.images,
                labels=self.labels if self.labels is not None else np.zeros(0, dtype=np.int64),
                has_labels=np.array(self.labels is not None),
                dataset=np.array(self.dataset or ""),
                split=np.array(self.split or ""),
                source=np.array(self.source),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> BenchInputs:
        with np.load(path, allow_pickle=False) as z:
            has_labels = bool(z["has_labels"])
            return cls(
                images=z["images"],
                labels=z["labels"] if has_labels else None,
                dataset=str(z["dataset"]) or None,
                split=str(z["split"]) or None,
                source=str(z["source"]),
            )


def synthetic_inputs(n: int = SYNTHETIC_IMAGES, seed: int = 0) -> BenchInputs:
    """Face-like generated images (smooth blob, gradient, noise: export's parity set).

    Never a flat image: a constant input can drive FP32 activations into subnormal numbers on
    some CPUs, which would time an input no camera produces.
    """
    from fer_edge.build.export import generated_faces

    images = generated_faces(n, seed=seed)
    return BenchInputs(
        images=images, labels=None, dataset=None, split=None, source=f"generated face-like (seed {seed})"
    )


def dataset_inputs(data: str | Path, split: str, votes: str | Path | None = None) -> BenchInputs:
    """The faces and labels of ``split``; a file without that split is a one-line error."""
    from fer_edge.data import load_dataset

    dataset = "ferplus" if votes is not None else "fer2013"
    faces = load_dataset(data, dataset=dataset, votes=votes)
    if not faces.has_split(split):
        raise FerEdgeError(f"has no {split} images (use --split to choose another)", path=data)
    part = faces.split(split)
    return BenchInputs(
        images=np.ascontiguousarray(part.images),
        labels=part.labels.astype(np.int64),
        dataset=faces.dataset,
        split=split,
        source=str(data),
    )
