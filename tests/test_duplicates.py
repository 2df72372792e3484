"""Test images with an exact pixel copy in Training: the finder, evaluate's report without them, the real count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_faces, write_fer_csv
from typer.testing import CliRunner

from fer_edge.bench.evaluate import evaluate_model
from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.data import FaceData, load_dataset
from fer_edge.data.duplicates import train_duplicate_mask
from fer_edge.model.labels import FER2013_LABELS

# PublicTest positions 1, 4, 7 copy Training images; PrivateTest positions 0, 9 do.
PUBLIC_COPIES = {1: 5, 4: 17, 7: 5}
PRIVATE_COPIES = {0: 39, 9: 2}


def planted(tmp_path: Path) -> Path:
    images, labels = synthetic_faces(60, len(FER2013_LABELS), seed=3)
    for pos, src in PUBLIC_COPIES.items():
        images[40 + pos], labels[40 + pos] = images[src], labels[src]
    for pos, src in PRIVATE_COPIES.items():
        images[50 + pos], labels[50 + pos] = images[src], labels[src]
    # A near copy (one pixel changed) is not an exact copy.
    images[42] = images[8]
    images[42, 0, 0] ^= 1
    splits = ["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    return write_fer_csv(tmp_path / "planted.csv", images, labels, splits)


def test_finds_exactly_the_planted_copies(tmp_path: Path) -> None:
    data = load_dataset(planted(tmp_path), cache=False)
    assert np.flatnonzero(train_duplicate_mask(data, "PublicTest")).tolist() == sorted(PUBLIC_COPIES)
    assert np.flatnonzero(train_duplicate_mask(data, "PrivateTest")).tolist() == sorted(PRIVATE_COPIES)
    with pytest.raises(FerEdgeError, match="not Training"):
        train_duplicate_mask(data, "Training")


class LookupBackend:
    """Right on the images copied in Training (as a memorising model would be), wrong elsewhere."""

    path = Path("lookup")
    labels = FER2013_LABELS
    num_classes = len(FER2013_LABELS)

    def __init__(self, data: FaceData) -> None:
        train = data.split("Training")
        self.known = {img.tobytes(): int(lab) for img, lab in zip(train.images, train.labels)}

    def infer(self, batch: np.ndarray) -> np.ndarray:
        out = np.zeros((len(batch), self.num_classes), np.float32)
        for i, img in enumerate(batch):
            label = self.known.get(np.ascontiguousarray(img).tobytes())
            # an image it has not seen: always class 0
            out[i, label if label is not None else 0] = 1.0
        return out


def test_evaluate_reports_accuracy_without_the_copies(tmp_path: Path) -> None:
    data = load_dataset(planted(tmp_path), cache=False)
    public = data.split("PublicTest")
    mask = train_duplicate_mask(data, "PublicTest")
    report = evaluate_model(LookupBackend(data), public, tta=True, exclude=mask)  # type: ignore[arg-type]
    others_right = float(np.mean(public.labels[~mask] == 0) * 100)
    assert report["train_duplicates"] == 3 and report["n_without_train_duplicates"] == 7
    assert report["accuracy"] == pytest.approx((3 + (public.labels[~mask] == 0).sum()) / 10 * 100, abs=0.01)
    assert report["accuracy_without_train_duplicates"] == pytest.approx(others_right, abs=0.01)
    assert "accuracy_flip_tta_without_train_duplicates" in report
    plain = evaluate_model(LookupBackend(data), public)  # type: ignore[arg-type]
    assert not any(k.endswith("without_train_duplicates") for k in plain)


def test_evaluate_cli_option(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from test_evaluate_info import write_checkpoint

    ckpt = write_checkpoint(tmp_path / "m.pt")
    data = planted(tmp_path)
    args = ["evaluate", str(ckpt), "--data", str(data), "--split", "PrivateTest", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--exclude-train-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 10 and report["train_duplicates"] == 2 and report["n_without_train_duplicates"] == 8
    table = CliRunner().invoke(app, [*args, "--exclude-train-duplicates"])
    assert table.exit_code == 0 and "without the 2 images copied in Training (8 left)" in table.stdout
    bad = CliRunner().invoke(app, [*args[:-4], "--split", "Training", "--device", "cpu", "--exclude-train-duplicates"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "not Training" in bad.output


def test_real_fer2013_has_568_test_images_copied_in_training(shared_data: Path) -> None:
    data = load_dataset(shared_data / "fer2013.csv.gz")
    public = int(train_duplicate_mask(data, "PublicTest").sum())
    private = int(train_duplicate_mask(data, "PrivateTest").sum())
    assert (public, private) == (280, 288) and public + private == 568
