"""Calibration manifests: stratified Training-only draws, determinism, hash refusal, shipped defaults."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fer_edge.build.calibration_manifest import (
    content_sha256,
    draw_manifest,
    load_manifest,
    save_manifest,
    select_manifest_images,
    stratified_rows,
)
from fer_edge.core.errors import FerEdgeError
from fer_edge.data import load_dataset

REPO = Path(__file__).resolve().parents[1]


def test_draw_is_stratified_training_only_and_exact(make_fer_csv: Callable[..., Path]) -> None:
    csv = make_fer_csv(n_train=300, n_public=60, n_private=60)
    data = load_dataset(csv)
    manifest = draw_manifest(data, csv, size=100, seed=3)
    assert manifest.size == len(manifest.rows) == 100
    assert len(set(manifest.rows)) == 100
    picked = select_manifest_images(manifest, data, csv)
    assert set(picked.splits.tolist()) == {"Training"}
    train = data.split("Training")
    expected = np.bincount(train.labels, minlength=7) * 100 / len(train)
    got = np.bincount(picked.labels, minlength=7)
    assert np.all(np.abs(got - expected) < 1.0), (got, expected)
    assert sum(manifest.class_counts.values()) == 100
    assert manifest.class_counts == picked.class_counts()


def test_draw_is_deterministic_from_the_seed(tiny_fer_csv: Path) -> None:
    data = load_dataset(tiny_fer_csv)
    a = draw_manifest(data, tiny_fer_csv, size=50, seed=7)
    b = draw_manifest(data, tiny_fer_csv, size=50, seed=7)
    c = draw_manifest(data, tiny_fer_csv, size=50, seed=8)
    assert a.rows == b.rows and a.to_json() == b.to_json()
    assert a.rows != c.rows


def test_size_larger_than_training_is_refused(tiny_fer_csv: Path) -> None:
    data = load_dataset(tiny_fer_csv)
    with pytest.raises(FerEdgeError, match="larger than the 200 Training images"):
        draw_manifest(data, tiny_fer_csv, size=201)
    with pytest.raises(FerEdgeError, match="at least 1"):
        stratified_rows(data.split("Training"), 0, 0)


def test_manifest_roundtrip_and_hash_refusal(make_fer_csv: Callable[..., Path], tmp_path: Path) -> None:
    csv = make_fer_csv(name="a.csv", seed=0)
    other = make_fer_csv(name="b.csv", seed=1)
    data = load_dataset(csv)
    manifest = draw_manifest(data, csv, size=40, seed=0)
    path = tmp_path / "m.json"
    save_manifest(manifest, path)
    body = json.loads(path.read_text())
    assert body["format"] == "fer-edge-calibration" and body["source_sha256"] == content_sha256(csv)
    assert "pixels" not in path.read_text()
    loaded = load_manifest(path)
    assert loaded.rows == manifest.rows and loaded.digest == manifest.digest
    assert len(select_manifest_images(loaded, data, csv, manifest_path=path)) == 40

    with pytest.raises(FerEdgeError, match="not the same data file") as info:
        select_manifest_images(loaded, load_dataset(other), other, manifest_path=path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_manifests_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(FerEdgeError, match="not valid JSON"):
        load_manifest(tmp_path / "junk.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(FerEdgeError, match="not a calibration manifest"):
        load_manifest(tmp_path / "other.json")
    empty = {"format": "fer-edge-calibration", "dataset": "fer2013", "source_name": "x", "source_sha256": "0",
             "seed": 0, "size": 0, "rows": [], "class_counts": {}}
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    with pytest.raises(FerEdgeError, match="lists no images"):
        load_manifest(tmp_path / "empty.json")
    with pytest.raises(FerEdgeError, match="not found"):
        load_manifest(tmp_path / "missing.json")


def test_content_hash_reads_through_gzip(tiny_fer_csv: Path, tmp_path: Path) -> None:
    gz = tmp_path / "fer2013.csv.gz"
    gz.write_bytes(gzip.compress(tiny_fer_csv.read_bytes()))
    assert content_sha256(gz) == content_sha256(tiny_fer_csv)


@pytest.mark.parametrize("name,dataset,classes",
                         [("fer2013.json", "fer2013", 7), ("ferplus.json", "ferplus", 8)])
def test_shipped_manifests_are_indices_only(name: str, dataset: str, classes: int) -> None:
    manifest = load_manifest(REPO / "calibration" / name)
    assert manifest.dataset == dataset and manifest.split == "Training"
    assert manifest.size == 1000 and len(manifest.class_counts) == classes
    assert sum(manifest.class_counts.values()) == 1000
    assert manifest.rows == sorted(manifest.rows)
    assert (REPO / "calibration" / name).stat().st_size < 20_000  # indices, no pixels


@pytest.mark.slow  # real-data accuracy: the host run checks it; device runs skip it
def test_shipped_fer2013_manifest_matches_the_reference_data(shared_data: Path) -> None:
    csv = shared_data / "fer2013.csv.gz"
    manifest = load_manifest(REPO / "calibration" / "fer2013.json")
    data = load_dataset(csv)
    picked = select_manifest_images(manifest, data, csv)
    assert picked.class_counts() == manifest.class_counts
    # The default draw (size 1000, seed 0) reproduces the shipped file.
    redrawn = draw_manifest(data, csv, size=1000, seed=0, source_sha256=manifest.source_sha256)
    assert redrawn.rows == manifest.rows
