"""The teacher file: an ensemble's cached outputs, so a student trains without the teachers loaded.

One compressed ``.npz`` (float16 logits, a few MB for FER2013), read with ``allow_pickle=False``
so loading it never runs code. Keys:

- ``meta``: a JSON string: format, version, dataset, labels, the content hash of the Training
  split it was made from, the members (architecture, seed) and the ensemble's accuracies.
- ``train_rows`` (int64 ``[N]``): source rows of the Training images, in the order of the arrays.
- ``train`` / ``train_flip`` (float16 ``[K, N, C]``): each member's logits on the plain and the
  horizontally flipped image.
- ``<split>_rows``, ``<split>``, ``<split>_flip`` for PublicTest and PrivateTest where present.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

import numpy as np

from fer_edge.core.atomic import write_bytes_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.paths import require_file
from fer_edge.data.core import FaceData
from fer_edge.model.scoring import accuracy, softmax

FORMAT = "fer-edge-teachers"
FORMAT_VERSION = 1
TEST_SPLITS = ("PublicTest", "PrivateTest")
FLOAT16_MAX = float(np.finfo(np.float16).max)


def training_fingerprint(data: FaceData) -> str:
    """Content hash of the Training split: pixels, labels (and vote distributions), class names.

    A content hash rather than the file's: the same images in a re-compressed or cut file
    (PrivateTest left behind to fit a transfer) still match.
    """
    train = data.split("Training")
    h = hashlib.sha256()
    h.update(json.dumps([data.dataset, list(data.class_names)]).encode())
    h.update(np.ascontiguousarray(train.images).tobytes())
    h.update(train.labels.astype(np.int64).tobytes())
    if train.soft is not None:
        h.update(np.asarray(train.soft, dtype=np.float32).tobytes())
    return h.hexdigest()


@dataclass
class TeacherOutputs:
    meta: Dict[str, Any]
    logits: Dict[str, np.ndarray] = field(default_factory=dict)  # "train", "train_flip", "PublicTest", ...
    rows: Dict[str, np.ndarray] = field(default_factory=dict)  # "train", "PublicTest", ...

    @property
    def members(self) -> int:
        return int(self.logits["train"].shape[0])

    def probabilities(self, key: str, temperature: float = 1.0) -> np.ndarray:
        """The ensemble's distribution ``[N, C]``: the mean of the members' softened softmax."""
        z = self.logits[key].astype(np.float64) / temperature
        return softmax(z).mean(axis=0)


def save_teacher_outputs(path: str | Path, outputs: TeacherOutputs) -> None:
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(outputs.meta, sort_keys=True))}
    for key, value in outputs.logits.items():
        if not np.isfinite(value).all():
            raise FerEdgeError(f"teacher logits {key!r} hold NaN or inf; the teachers diverged", path=path)
        arrays[key] = np.clip(value, -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
    for key, value in outputs.rows.items():
        arrays[f"{key}_rows"] = value.astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    write_bytes_atomic(path, buf.getvalue())


def load_teacher_outputs(path: str | Path) -> TeacherOutputs:
    path = Path(path)
    if not path.exists():
        raise FerEdgeError("teacher file not found; make one with scripts/train_teachers.py", path=path)
    require_file(path, "teacher file (.npz)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise FerEdgeError(f"not a readable teacher file (.npz): {exc}", path=path) from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError):
        raise FerEdgeError("not a fer-edge teacher file (no 'meta' entry)", path=path) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FerEdgeError(f"not a fer-edge teacher file (format is not {FORMAT!r})", path=path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise FerEdgeError(
            f"teacher file version {meta.get('format_version')}; this fer-edge reads version {FORMAT_VERSION}",
            path=path,
        )
    out = TeacherOutputs(meta=meta)
    for key in ("train", *TEST_SPLITS):
        if key not in arrays and key != "train":
            continue
        try:
            rows, plain, flip = arrays[f"{key}_rows"], arrays[key], arrays[f"{key}_flip"]
        except KeyError as exc:
            raise FerEdgeError(f"teacher file lacks {exc.args[0]!r}", path=path) from None
        shape = (plain.shape[0], len(rows), len(meta["labels"]))
        if plain.ndim != 3 or plain.shape != shape or flip.shape != shape:
            raise FerEdgeError(f"teacher logits {key!r} have shape {plain.shape}, expected {shape}", path=path)
        out.rows[key] = rows.astype(np.int64)
        out.logits[key] = plain.astype(np.float32)
        out.logits[f"{key}_flip"] = flip.astype(np.float32)
    return out


def check_matches(outputs: TeacherOutputs, data: FaceData, path: str | Path) -> None:
    """Refuse, in one line, a teacher file made for other data than ``data``."""
    meta = outputs.meta
    if meta.get("dataset") != data.dataset:
        raise FerEdgeError(
            f"teacher file was made for {meta.get('dataset')}, not {data.dataset}; "
            f"use one made with --dataset {data.dataset}",
            path=path,
        )
    if list(meta.get("labels", [])) != list(data.class_names):
        raise FerEdgeError(f"teacher labels {meta.get('labels')} differ from {list(data.class_names)}", path=path)
    train = data.split("Training")
    if len(outputs.rows["train"]) != len(train):
        raise FerEdgeError(
            f"teacher file covers {len(outputs.rows['train'])} Training images but {data.source} has "
            f"{len(train)}; make the teacher file from this data file",
            path=path,
        )
    if meta.get("training_sha256") != training_fingerprint(data):
        raise FerEdgeError(
            f"teacher file was made from other Training images or labels than {data.source}; "
            "make the teacher file from this data file",
            path=path,
        )


def positions(outputs: TeacherOutputs, rows: np.ndarray, path: str | Path) -> np.ndarray:
    """Index into the teacher's Training arrays of each source row in ``rows``."""
    teacher_rows = outputs.rows["train"]
    order = np.argsort(teacher_rows, kind="stable")
    found = np.searchsorted(teacher_rows, rows, sorter=order)
    found = np.minimum(found, len(order) - 1)
    pos = order[found]
    missing = teacher_rows[pos] != rows
    if missing.any():
        raise FerEdgeError(
            f"teacher file has no outputs for source row {int(rows[np.argmax(missing)])}; "
            "make the teacher file from this data file",
            path=path,
        )
    return pos


def ensemble_accuracies(
    outputs: TeacherOutputs, data: FaceData, exclude: Dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """The ensemble's own accuracy per test split: single pass and flip TTA, with and without ``exclude``."""
    report: dict[str, Any] = {}
    for split in TEST_SPLITS:
        if split not in outputs.logits or not data.has_split(split):
            continue
        part = data.split(split)
        if not np.array_equal(outputs.rows[split], part.rows):
            raise FerEdgeError(f"teacher {split} outputs are for other rows than {data.source}'s {split}")
        labels = part.labels
        plain = outputs.probabilities(split)
        tta = plain + outputs.probabilities(f"{split}_flip")
        row: dict[str, Any] = {
            "n": int(len(labels)),
            "single": accuracy(labels, plain.argmax(1)),
            "flip_tta": accuracy(labels, tta.argmax(1)),
        }
        if exclude is not None and split in exclude:
            keep = ~exclude[split]
            row["n_without_train_duplicates"] = int(keep.sum())
            row["single_without_train_duplicates"] = accuracy(labels[keep], plain.argmax(1)[keep])
            row["flip_tta_without_train_duplicates"] = accuracy(labels[keep], tta.argmax(1)[keep])
        report[split] = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
    return report
