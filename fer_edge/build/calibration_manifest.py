"""Calibration manifests: which Training images calibrate an INT8 model, written down.

A manifest records row indices into the source CSV (``FaceData.rows``), never pixels, plus the
SHA-256 of the source file's content, so anyone with the same ``fer2013.csv`` reproduces the
same calibration and a different file is refused instead of silently calibrating on other
images. The hash is of the *uncompressed* CSV text, so ``fer2013.csv`` and a gzip of it match.

The set is drawn only from Training (never a test split), stratified by class (each class gets
its share of the set, largest remainder first) and deterministic from a seed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.paths import require_file
from fer_edge.data.core import FaceData

MANIFEST_FORMAT = "fer-edge-calibration"
MANIFEST_VERSION = 1
DEFAULT_SIZE = 1000
DEFAULT_SEED = 0
CALIBRATION_SPLIT = "Training"


def content_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's content, read through gzip when the file is gzip-compressed.

    For an image-folder tree, a fingerprint of its file names and sizes (prefixed ``folders-``).
    """
    path = Path(path)
    if path.is_dir():
        from fer_edge.data.folders import folder_fingerprint

        return "folders-" + folder_fingerprint(path)
    require_file(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    h = hashlib.sha256()
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            while block := f.read(chunk):
                h.update(block)
    except (OSError, EOFError) as exc:
        raise FerEdgeError(f"cannot read ({exc})", path=path) from None
    return h.hexdigest()


@dataclass
class CalibrationManifest:
    dataset: str
    source_name: str
    source_sha256: str
    seed: int
    size: int
    rows: list[int]
    class_counts: dict[str, int]
    split: str = CALIBRATION_SPLIT
    votes_name: str | None = None
    votes_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, **asdict(self)}
        if not body["extra"]:
            del body["extra"]
        # Indices on one line each would make a 1000-line file; keep them compact.
        text = json.dumps({k: v for k, v in body.items() if k != "rows"}, indent=2)
        return text[:-2] + ',\n  "rows": ' + json.dumps(body["rows"]) + "\n}\n"

    @property
    def digest(self) -> str:
        """Short hash of the manifest's content (recorded in an INT8 model's metadata)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def stratified_rows(data: FaceData, size: int, seed: int) -> np.ndarray:
    """Row positions (into ``data``) of a class-stratified random sample of ``size`` images.

    Class ``c`` gets ``size * n_c / n`` images, rounded by largest remainder so the total is
    exactly ``size``; the draw within each class is uniform without replacement.
    """
    n = len(data)
    if size < 1:
        raise FerEdgeError(f"calibration size must be at least 1, got {size}")
    if size > n:
        raise FerEdgeError(f"calibration size {size} is larger than the {n} {CALIBRATION_SPLIT} images")
    counts = np.bincount(data.labels, minlength=data.num_classes)
    share = counts * size / n
    take = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - take), kind="stable")
    take[order[: size - int(take.sum())]] += 1
    rng = np.random.default_rng(seed)
    picked: list[np.ndarray] = []
    for c in range(data.num_classes):
        members = np.flatnonzero(data.labels == c)
        if take[c]:
            picked.append(rng.choice(members, size=int(take[c]), replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def draw_manifest(
    data: FaceData,
    source: str | Path,
    size: int = DEFAULT_SIZE,
    seed: int = DEFAULT_SEED,
    votes: str | Path | None = None,
    source_sha256: str | None = None,
) -> CalibrationManifest:
    """Draw a calibration set from the Training split of ``data`` (loaded from ``source``)."""
    if not data.has_split(CALIBRATION_SPLIT):
        raise FerEdgeError(f"has no {CALIBRATION_SPLIT} images to calibrate on", path=source)
    train = data.split(CALIBRATION_SPLIT)
    picked = train.subset(stratified_rows(train, size, seed))
    return CalibrationManifest(
        dataset=data.dataset,
        source_name=Path(source).name,
        source_sha256=source_sha256 or content_sha256(source),
        seed=seed,
        size=len(picked),
        rows=[int(r) for r in picked.rows],
        class_counts=picked.class_counts(),
        votes_name=Path(votes).name if votes is not None else None,
        votes_sha256=content_sha256(votes) if votes is not None else None,
    )


def save_manifest(manifest: CalibrationManifest, path: str | Path) -> None:
    write_text_atomic(path, manifest.to_json())


def load_manifest(path: str | Path) -> CalibrationManifest:
    path = Path(path)
    require_file(path, "calibration manifest")
    try:
        body = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FerEdgeError("calibration manifest is not valid JSON", path=path) from None
    if not isinstance(body, dict) or body.get("format") != MANIFEST_FORMAT:
        raise FerEdgeError(f"not a calibration manifest (no 'format: {MANIFEST_FORMAT}')", path=path)
    fields = CalibrationManifest.__dataclass_fields__
    try:
        manifest = CalibrationManifest(**{k: v for k, v in body.items() if k in fields})
    except TypeError as exc:
        raise FerEdgeError(f"calibration manifest is missing a field ({exc})", path=path) from None
    if not manifest.rows or not all(isinstance(r, int) for r in manifest.rows):
        raise FerEdgeError("calibration manifest lists no images", path=path)
    if len(manifest.rows) != manifest.size:
        listed = len(manifest.rows)
        raise FerEdgeError(f"manifest says size {manifest.size} but lists {listed} rows", path=path)
    return manifest


def select_manifest_images(
    manifest: CalibrationManifest,
    data: FaceData,
    source: str | Path,
    votes: str | Path | None = None,
    manifest_path: str | Path | None = None,
    source_sha256: str | None = None,
) -> FaceData:
    """The images a manifest names, after checking that ``source`` is the file it was drawn from."""
    where = manifest_path if manifest_path is not None else "calibration manifest"
    if manifest.dataset != data.dataset:
        raise FerEdgeError(f"manifest is for dataset {manifest.dataset!r}, the data is {data.dataset!r}",
                           path=where)
    actual = source_sha256 or content_sha256(source)
    if actual != manifest.source_sha256:
        raise FerEdgeError(
            f"manifest was drawn from a file with sha256 {manifest.source_sha256[:12]}..., but {source} has "
            f"{actual[:12]}...: not the same data file (draw a new set without --manifest)",
            path=where,
        )
    if manifest.votes_sha256 is not None and votes is not None:
        votes_actual = content_sha256(votes)
        if votes_actual != manifest.votes_sha256:
            raise FerEdgeError(
                f"manifest was drawn with votes sha256 {manifest.votes_sha256[:12]}..., but {votes} has "
                f"{votes_actual[:12]}...: not the same votes file",
                path=where,
            )
    position = {int(r): i for i, r in enumerate(data.rows)}
    missing = [r for r in manifest.rows if r not in position]
    if missing:
        raise FerEdgeError(f"manifest row {missing[0]} is not an image of {source}", path=where)
    picked = data.subset(np.array([position[r] for r in manifest.rows], dtype=np.int64))
    wrong = np.flatnonzero(picked.splits != CALIBRATION_SPLIT)
    if wrong.size:
        i = int(wrong[0])
        raise FerEdgeError(f"manifest row {manifest.rows[i]} is in {picked.splits[i]}, not Training",
                           path=where)
    return picked
