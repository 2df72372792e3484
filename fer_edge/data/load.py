"""``load_dataset``: one entry point over every supported format."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.files import file_sha256
from fer_edge.core.paths import require_file
from fer_edge.data.cache import cached_arrays
from fer_edge.data.core import IMAGE_SIZE, FaceData
from fer_edge.data.fer2013_csv import parse_fer2013_csv
from fer_edge.data.ferplus import check_row_order, majority_labels, read_votes, soft_labels
from fer_edge.data.folders import folder_fingerprint, read_image_folders
from fer_edge.model.labels import SPLITS, labels_for


def check_face_arrays(arrays: Dict[str, np.ndarray]) -> None:
    """``ValueError`` unless ``arrays`` are what a FER2013 parse gives: uint8 [N, 48, 48] faces, labels
    0..6, known split names (a cache that reads but holds anything else is discarded)."""
    images, labels, splits = arrays["images"], arrays["labels"], arrays["splits"]
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images are {images.dtype} {list(images.shape)}, not uint8 [N, 48, 48]")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels are {labels.dtype} {list(labels.shape)}, not integers [N]")
    n_classes = len(labels_for("fer2013"))
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels outside 0..{n_classes - 1}")
    unknown = set(np.unique(splits).tolist()) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split {sorted(unknown)[0]!r}")


def load_fer2013(path: Path, cache: bool = True) -> FaceData:
    """FER2013 from a Kaggle CSV (plain or gzip) or an image-folder tree."""
    path = require_file(path, "data file", folder_ok=True)
    if path.is_dir():
        key = "folders-" + folder_fingerprint(path)

        def build() -> dict[str, np.ndarray]:
            images, labels, splits = read_image_folders(path)
            return {"images": images, "labels": labels, "splits": splits}
    else:
        key = "fer2013-" + file_sha256(path)

        def build() -> dict[str, np.ndarray]:
            images, labels, splits = parse_fer2013_csv(path)
            return {"images": images, "labels": labels, "splits": splits}

    arrays = cached_arrays(key, build, enabled=cache, keys=("images", "labels", "splits"), check=check_face_arrays)
    return FaceData(
        images=arrays["images"],
        labels=arrays["labels"].astype(np.int64),
        splits=arrays["splits"].astype(str),
        class_names=labels_for("fer2013"),
        dataset="fer2013",
        source=str(path),
    )


def load_ferplus(path: Path, votes: Path, cache: bool = True) -> FaceData:
    """FERPlus majority labels (and vote distributions) over the images of fer2013.csv."""
    base = load_fer2013(path, cache=cache)
    votes = Path(votes)
    counts, usage, names = read_votes(votes)
    if len(counts) != len(base):
        raise FerEdgeError(
            f"has {len(counts)} vote rows but {path} has {len(base)} images; "
            "the files are joined by line position and must have the same row count",
            path=votes,
        )
    mismatch = np.flatnonzero(usage != base.splits)
    if mismatch.size:
        i = int(mismatch[0])
        raise FerEdgeError(
            f"Usage {usage[i]!r} differs from {base.splits[i]!r} in {path}; not the matching votes file",
            path=votes,
            line=i + 2,
        )
    check_row_order(names, usage, votes, counts)
    labels = majority_labels(counts)
    keep = np.flatnonzero(labels >= 0)
    return FaceData(
        images=base.images[keep],
        labels=labels[keep],
        splits=base.splits[keep],
        class_names=labels_for("ferplus"),
        dataset="ferplus",
        source=str(path),
        rows=keep.astype(np.int64),
        soft=soft_labels(counts)[keep],
    )


def load_dataset(
    path: str | Path, dataset: str = "fer2013", votes: str | Path | None = None, cache: bool = True
) -> FaceData:
    """Load ``dataset`` (``fer2013`` or ``ferplus``) from ``path`` (+ the FERPlus ``votes``)."""
    labels_for(dataset)  # unknown dataset: one clear error before any I/O
    if dataset == "ferplus":
        if votes is None:
            raise FerEdgeError("--dataset ferplus needs --votes fer2013new.csv (the FERPlus annotator votes)")
        return load_ferplus(Path(path), Path(votes), cache=cache)
    return load_fer2013(Path(path), cache=cache)
