"""FERPlus labels (Barsoum et al. 2016): majority mode by hand, soft labels, the protocol counts on the real files."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pytest

from fer_edge.data import FaceData, load_dataset
from fer_edge.data.ferplus import VOTE_COLUMNS, majority_labels, soft_labels
from fer_edge.model.labels import FERPLUS_LABELS

UNKNOWN, NOT_A_FACE = VOTE_COLUMNS.index("unknown"), VOTE_COLUMNS.index("NF")


def votes(**counts: int) -> list[int]:
    """One votes row, e.g. ``votes(neutral=5, happiness=2, NF=1)``."""
    row = [0] * len(VOTE_COLUMNS)
    for name, n in counts.items():
        row[VOTE_COLUMNS.index(name)] = n
    return row


MAJORITY_CASES: list[tuple[str, list[int], int]] = [
    ("clear winner", votes(happiness=8, surprise=2), 1),
    # 5 of 10 is not more than half, but the five single votes are outliers and go first
    ("single votes removed", votes(neutral=5, happiness=1, surprise=1, sadness=1, anger=1, fear=1), 0),
    ("single votes removed, unknown too", votes(contempt=3, unknown=1, NF=1, neutral=1), 7),
    ("more than half after removal", votes(sadness=4, neutral=3), 3),
    ("exactly half is not a majority", votes(anger=3, disgust=3), -1),
    ("three-way tie", votes(neutral=2, happiness=2, surprise=2), -1),
    ("half against two others", votes(fear=4, surprise=2, sadness=2), -1),
    ("top is unknown", votes(unknown=7, neutral=3), -1),
    ("top is not-a-face", votes(NF=10), -1),
    ("emotion beats a minority of unknown", votes(surprise=6, unknown=2, NF=2), 2),
    ("only single votes", votes(neutral=1, happiness=1, surprise=1, sadness=1, anger=1), -1),
    ("no votes at all", votes(), -1),
    ("last emotion column", votes(contempt=10), 7),
]


@pytest.mark.parametrize(("row", "expected"), [c[1:] for c in MAJORITY_CASES], ids=[c[0] for c in MAJORITY_CASES])
def test_majority_label_of_one_row(row: list[int], expected: int) -> None:
    assert majority_labels(np.array([row])).tolist() == [expected]


def test_majority_labels_on_a_batch_match_row_by_row() -> None:
    batch = np.array([c[1] for c in MAJORITY_CASES])
    assert majority_labels(batch).tolist() == [c[2] for c in MAJORITY_CASES]
    assert majority_labels(batch).dtype == np.int64


def test_soft_labels_are_the_vote_distribution_without_single_votes() -> None:
    rows = np.array(
        [
            votes(neutral=6, happiness=2, surprise=1),
            votes(anger=3, disgust=3, unknown=4),
            votes(contempt=5, NF=5),
            votes(NF=10),
            votes(),
        ]
    )
    soft = soft_labels(rows)
    assert soft.shape == (5, len(FERPLUS_LABELS)) and soft.dtype == np.float32
    np.testing.assert_allclose(soft[0], [0.75, 0.25, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(soft[1], [0, 0, 0, 0, 0.5, 0.5, 0, 0])  # unknown is not an emotion
    np.testing.assert_allclose(soft[2], np.eye(8)[7])
    np.testing.assert_allclose(soft[1:3].sum(axis=1), 1.0, rtol=1e-6)
    # no emotion votes left: an all-zero row (such images are dropped by the majority mode anyway)
    assert not soft[3:].any()


def test_soft_labels_sum_to_one_for_every_kept_image() -> None:
    rng = np.random.default_rng(0)
    counts = rng.multinomial(10, np.full(10, 0.1), size=500)
    keep = majority_labels(counts) >= 0
    assert keep.any()
    soft = soft_labels(counts)[keep]
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    # the majority label is the most likely class of the distribution
    np.testing.assert_array_equal(soft.argmax(axis=1), majority_labels(counts)[keep])


# ---- the real files (skipped without ../shared/data) -------------------------------------------


@functools.lru_cache(maxsize=None)
def load_real(data_dir: Path, dataset: str) -> FaceData:
    """Parse the full real file once per session (the first parse takes seconds)."""
    votes = data_dir / "fer2013new.csv" if dataset == "ferplus" else None
    return load_dataset(data_dir / "fer2013.csv.gz", dataset=dataset, votes=votes)


@pytest.fixture
def real_votes(shared_data: Path) -> Path:
    if not (shared_data / "fer2013new.csv").exists():
        pytest.skip(f"FERPlus votes fer2013new.csv not present in {shared_data}")
    return shared_data


def test_real_fer2013_counts(shared_data: Path) -> None:
    data = load_real(shared_data, "fer2013")
    assert len(data) == 35887
    assert {s: int((data.splits == s).sum()) for s in ("Training", "PublicTest", "PrivateTest")} == {
        "Training": 28709,
        "PublicTest": 3589,
        "PrivateTest": 3589,
    }
    assert data.labels.min() == 0 and data.labels.max() == 6


def test_real_ferplus_protocol_counts(real_votes: Path) -> None:
    data = load_real(real_votes, "ferplus")
    counts = {s: int((data.splits == s).sum()) for s in ("Training", "PublicTest", "PrivateTest")}
    assert counts == {"Training": 25060, "PublicTest": 3199, "PrivateTest": 3153}
    assert data.class_names == FERPLUS_LABELS and data.num_classes == 8
    assert set(np.unique(data.labels).tolist()) == set(range(8))
    assert data.soft is not None
    np.testing.assert_allclose(data.soft.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(data.soft.argmax(axis=1), data.labels)
    # rows point back into fer2013.csv: the images are those rows of the FER2013 reading
    base = load_real(real_votes, "fer2013")
    assert np.all(np.diff(data.rows) > 0)
    np.testing.assert_array_equal(data.images[:50], base.images[data.rows[:50]])
    np.testing.assert_array_equal(data.splits, base.splits[data.rows])


def test_second_load_of_the_full_csv_is_fast(shared_data: Path) -> None:
    load_real(shared_data, "fer2013")  # parsed (or already cached) once
    t0 = time.perf_counter()
    again = load_dataset(shared_data / "fer2013.csv.gz")
    seconds = time.perf_counter() - t0
    assert len(again) == 35887
    assert seconds < 2, f"cached load took {seconds:.2f} s"  # measured about 0.2 s on 2 busy cores
