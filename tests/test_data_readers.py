"""Readers on small generated files: CSV, CSV.gz, image folders, the parsed-data cache, and every bad input."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import host_side, synthetic_faces, write_fer_csv, write_votes_csv
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.data import FaceData, load_dataset
from fer_edge.model.labels import FER2013_LABELS, FERPLUS_LABELS

HEADER = "emotion,pixels,Usage"
GOOD_PIXELS = " ".join(["128"] * 2304)


def write_rows(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# ---- formats -------------------------------------------------------------------------------


def test_csv_reader_returns_the_generated_faces(make_fer_csv: Callable[..., Path]) -> None:
    path = make_fer_csv(n_train=20, n_public=5, n_private=7)
    data = load_dataset(path, cache=False)
    images, labels = synthetic_faces(32, len(FER2013_LABELS), seed=0)
    assert isinstance(data, FaceData)
    assert data.images.dtype == np.uint8 and data.images.shape == (32, 48, 48)
    assert data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.splits.tolist() == ["Training"] * 20 + ["PublicTest"] * 5 + ["PrivateTest"] * 7
    np.testing.assert_array_equal(data.rows, np.arange(32))
    assert data.class_names == FER2013_LABELS and data.dataset == "fer2013"
    assert len(data.split("PublicTest")) == 5
    np.testing.assert_array_equal(data.split("PrivateTest").rows, np.arange(25, 32))


def test_plain_and_gzip_csv_give_identical_arrays(make_fer_csv: Callable[..., Path]) -> None:
    plain = load_dataset(make_fer_csv(n_train=30, name="fer.csv"), cache=False)
    packed = load_dataset(make_fer_csv(n_train=30, name="fer.csv.gz"), cache=False)
    assert packed.source.endswith(".gz")
    for field in ("images", "labels", "splits", "rows"):
        np.testing.assert_array_equal(getattr(plain, field), getattr(packed, field))


def test_csv_tolerates_crlf_and_trailing_blank_lines(tmp_path: Path) -> None:
    text = f"{HEADER}\r\n3,{GOOD_PIXELS},Training\r\n0,{GOOD_PIXELS},PrivateTest\r\n\r\n\n"
    (tmp_path / "crlf.csv").write_bytes(text.encode())
    data = load_dataset(tmp_path / "crlf.csv", cache=False)
    assert data.labels.tolist() == [3, 0]
    assert data.splits.tolist() == ["Training", "PrivateTest"]
    assert (data.images == 128).all()


def write_image_folders(root: Path) -> dict[str, list[tuple[str, str, np.ndarray]]]:
    """train/<class>/ and test/<class>/ with PNG and JPG files; returns what was written per split."""
    from PIL import Image

    images, _ = synthetic_faces(9, 7, seed=3)
    layout = [
        ("train", "happy", "png"),
        ("train", "happy", "jpg"),
        ("train", "sad", "png"),
        ("train", "angry", "png"),
        ("test", "angry", "png"),
        ("test", "surprise", "jpg"),
        ("test", "neutral", "png"),
    ]
    written: dict[str, list[tuple[str, str, np.ndarray]]] = {"train": [], "test": []}
    for i, (split, cls, ext) in enumerate(layout):
        folder = root / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"im{i:03d}.{ext}")
        written[split].append((cls, ext, images[i]))
    # an RGB image of another size is converted to 48x48 grayscale
    Image.fromarray(np.full((96, 96, 3), 200, np.uint8)).save(root / "train" / "sad" / "big.png")
    written["train"].append(("sad", "png", np.full((48, 48), 200, np.uint8)))
    (root / "train" / "happy" / "notes.txt").write_text("not an image, skipped")
    return written


def test_image_folder_layout(tmp_path: Path) -> None:
    written = write_image_folders(tmp_path / "faces")
    data = load_dataset(tmp_path / "faces", cache=False)
    assert data.images.shape == (8, 48, 48) and data.images.dtype == np.uint8
    assert data.dataset == "fer2013"
    by_split = {"Training": data.split("Training"), "PrivateTest": data.split("PrivateTest")}
    assert not data.has_split("PublicTest")  # test/ of that download is read as PrivateTest
    for folder, split in (("train", "Training"), ("test", "PrivateTest")):
        part = by_split[split]
        assert sorted(FER2013_LABELS[i] for i in part.labels) == sorted(cls for cls, _, _ in written[folder])
    # PNG is lossless: every PNG face is read back exactly, under its class folder's label
    for folder, split in (("train", "Training"), ("test", "PrivateTest")):
        part = by_split[split]
        for cls, ext, img in written[folder]:
            matches = [i for i in range(len(part)) if np.array_equal(part.images[i], img)]
            if ext == "png":
                assert matches, f"{folder}/{cls} PNG not read back exactly"
                assert all(FER2013_LABELS[part.labels[i]] == cls for i in matches)
            else:  # JPG: lossy, but close
                errs = [np.abs(part.images[i].astype(int) - img).mean() for i in range(len(part))]
                assert min(errs) < 8


def test_image_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "nosplit" / "happy").mkdir(parents=True)
    with pytest.raises(FerEdgeError, match="no train/ or test/ folder"):
        load_dataset(tmp_path / "nosplit", cache=False)
    (tmp_path / "badclass" / "train" / "joy").mkdir(parents=True)
    with pytest.raises(FerEdgeError, match="unknown class folder 'joy'") as exc:
        load_dataset(tmp_path / "badclass", cache=False)
    assert "joy" in str(exc.value)
    bad = tmp_path / "badimage" / "train" / "fear"
    bad.mkdir(parents=True)
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(FerEdgeError, match="cannot read image") as exc:
        load_dataset(tmp_path / "badimage", cache=False)
    assert "broken.png" in str(exc.value)


# ---- the parsed-data cache -------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(root))
    return root


def _refuse_to_parse(*args: object, **kwargs: object) -> None:
    raise AssertionError("the source was parsed again; expected the cache to serve it")


def test_second_load_is_served_from_the_cache(
    make_fer_csv: Callable[..., Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_fer_csv(n_train=20, n_public=4, n_private=4, name="cached.csv.gz")
    first = load_dataset(path)
    entries = list(cache_dir.glob("*.npz"))
    assert len(entries) == 1 and entries[0].name.startswith("fer2013-")
    monkeypatch.setattr("fer_edge.data.load.parse_fer2013_csv", _refuse_to_parse)
    second = load_dataset(path)
    for field in ("images", "labels", "splits", "rows"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert second.images.dtype == np.uint8 and second.labels.dtype == np.int64
    assert second.splits.dtype.kind == "U"
    # cache=False reads the source, which the patch forbids
    with pytest.raises(AssertionError, match="parsed again"):
        load_dataset(path, cache=False)


def test_changed_file_gets_a_new_cache_entry(make_fer_csv: Callable[..., Path], cache_dir: Path) -> None:
    path = make_fer_csv(n_train=10, n_public=2, n_private=2, name="changing.csv")
    before = load_dataset(path)
    images, labels = synthetic_faces(14, 7, seed=99)
    write_fer_csv(path, images, labels, ["Training"] * 10 + ["PublicTest"] * 2 + ["PrivateTest"] * 2)
    after = load_dataset(path)
    assert len(list(cache_dir.glob("*.npz"))) == 2
    np.testing.assert_array_equal(after.images, images)
    assert not np.array_equal(before.images, after.images)


def test_folder_cache_serves_the_second_load_and_sees_changes(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    root = tmp_path / "faces"
    write_image_folders(root)
    first = load_dataset(root)
    assert len(list(cache_dir.glob("folders-*.npz"))) == 1
    with monkeypatch.context() as m:
        m.setattr("fer_edge.data.load.read_image_folders", _refuse_to_parse)
        np.testing.assert_array_equal(load_dataset(root).images, first.images)
    (root / "test" / "fear").mkdir()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / "test" / "fear" / "new.png")
    changed = load_dataset(root)
    assert len(changed) == len(first) + 1
    assert len(list(cache_dir.glob("folders-*.npz"))) == 2


def test_corrupt_cache_entry_is_rebuilt(make_fer_csv: Callable[..., Path], cache_dir: Path) -> None:
    path = make_fer_csv(n_train=10, n_public=2, n_private=2)
    first = load_dataset(path)
    (entry,) = cache_dir.glob("*.npz")
    entry.write_bytes(b"garbage")
    again = load_dataset(path)
    np.testing.assert_array_equal(first.images, again.images)


# ---- bad input: every case of the issue, through load_dataset and through the CLI -----------


@dataclass
class BadInput:
    path: Path
    expect: list[str]
    dataset: str = "fer2013"
    votes: Path | None = None


def _missing(tmp: Path) -> BadInput:
    return BadInput(tmp / "nope.csv", ["nope.csv", "file not found"])


def _wrong_header(tmp: Path) -> BadInput:
    path = write_rows(tmp / "header.csv", [f"0,{GOOD_PIXELS},Training"], header="label,image,split")
    return BadInput(path, ["header.csv", "wrong header"])


def _short_row(tmp: Path) -> BadInput:
    short = " ".join(["7"] * 2303)
    path = write_rows(tmp / "short.csv", [f"0,{GOOD_PIXELS},Training", f"1,{short},Training"])
    return BadInput(path, ["short.csv:3", "2303 values", "2304"])


def _bad_pixel_value(tmp: Path) -> BadInput:
    pixels = " ".join(["300"] + ["1"] * 2303)
    path = write_rows(tmp / "value.csv", [f"0,{GOOD_PIXELS},Training"] * 3 + [f"2,{pixels},PublicTest"])
    return BadInput(path, ["value.csv:5", "'300'"])


def _label_out_of_range(tmp: Path) -> BadInput:
    path = write_rows(tmp / "label.csv", [f"0,{GOOD_PIXELS},Training", f"7,{GOOD_PIXELS},Training"])
    return BadInput(path, ["label.csv:3", "label '7' out of range"])


def _negative_label(tmp: Path) -> BadInput:
    path = write_rows(tmp / "neg.csv", [f"-1,{GOOD_PIXELS},Training"])
    return BadInput(path, ["neg.csv:2", "out of range"])


def _unknown_usage(tmp: Path) -> BadInput:
    path = write_rows(tmp / "usage.csv", [f"0,{GOOD_PIXELS},Validation"])
    return BadInput(path, ["usage.csv:2", "Validation"])


def _header_only(tmp: Path) -> BadInput:
    path = write_rows(tmp / "empty.csv", [])
    return BadInput(path, ["empty.csv", "no image rows"])


def _broken_gzip(tmp: Path) -> BadInput:
    path = tmp / "broken.csv.gz"
    path.write_bytes(gzip.compress(b"emotion,pixels,Usage\n0,1 2 3,Training\n")[:30])
    return BadInput(path, ["broken.csv.gz", "cannot read"])


def _votes_count_mismatch(tmp: Path) -> BadInput:
    images, labels = synthetic_faces(6, 7)
    splits = ["Training"] * 6
    path = write_fer_csv(tmp / "pixels.csv", images, labels, splits)
    votes = write_votes_csv(tmp / "votes.csv", np.full((5, 10), 2), splits[:5])
    return BadInput(path, ["votes.csv", "5 vote rows", "6 images"], dataset="ferplus", votes=votes)


def _votes_wrong_header(tmp: Path) -> BadInput:
    images, labels = synthetic_faces(2, 7)
    path = write_fer_csv(tmp / "pixels.csv", images, labels, ["Training"] * 2)
    votes = tmp / "votes.csv"
    votes.write_text("Usage,Image name,a,b\nTraining,x.png,1,2\nTraining,y.png,1,2\n")
    return BadInput(path, ["votes.csv", "wrong header"], dataset="ferplus", votes=votes)


def _votes_usage_mismatch(tmp: Path) -> BadInput:
    images, labels = synthetic_faces(3, 7)
    path = write_fer_csv(tmp / "pixels.csv", images, labels, ["Training"] * 3)
    votes = write_votes_csv(tmp / "votes.csv", np.full((3, 10), 2), ["Training", "Training", "PublicTest"])
    return BadInput(path, ["votes.csv:4", "not the matching"], dataset="ferplus", votes=votes)


def _ferplus_without_votes(tmp: Path) -> BadInput:
    images, labels = synthetic_faces(2, 7)
    path = write_fer_csv(tmp / "pixels.csv", images, labels, ["Training"] * 2)
    return BadInput(path, ["--votes"], dataset="ferplus")


def _unknown_dataset(tmp: Path) -> BadInput:
    images, labels = synthetic_faces(2, 7)
    path = write_fer_csv(tmp / "pixels.csv", images, labels, ["Training"] * 2)
    return BadInput(path, ["unknown dataset 'affectnet'", "fer2013", "ferplus"], dataset="affectnet")


BAD_INPUTS: dict[str, Callable[[Path], BadInput]] = {
    "missing file": _missing,
    "wrong header": _wrong_header,
    "pixel row without 2304 values": _short_row,
    "pixel value above 255": _bad_pixel_value,
    "label out of range": _label_out_of_range,
    "negative label": _negative_label,
    "unknown Usage": _unknown_usage,
    "no rows": _header_only,
    "truncated gzip": _broken_gzip,
    "votes row count differs": _votes_count_mismatch,
    "votes wrong header": _votes_wrong_header,
    "votes Usage differs": _votes_usage_mismatch,
    "ferplus without votes": _ferplus_without_votes,
    "unknown dataset": _unknown_dataset,
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_fer_edge_error_naming_the_file(case: str, tmp_path: Path) -> None:
    spec = BAD_INPUTS[case](tmp_path)
    with pytest.raises(FerEdgeError) as exc:
        load_dataset(spec.path, dataset=spec.dataset, votes=spec.votes, cache=False)
    message = str(exc.value)
    assert "\n" not in message
    for part in spec.expect:
        assert part in message, f"{part!r} not in {message!r}"


@host_side
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_via_cli_is_one_line_without_traceback(case: str, tmp_path: Path) -> None:
    spec = BAD_INPUTS[case](tmp_path)
    args = ["train", "--data", str(spec.path), "--out", str(tmp_path / "run"), "--epochs", "1"]
    args += ["--dataset", spec.dataset]
    if spec.votes is not None:
        args += ["--votes", str(spec.votes)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for part in spec.expect:
        assert part in lines[0]
    assert not (tmp_path / "run").exists(), "a failed run must leave nothing behind"


def test_empty_split_is_an_error(make_fer_csv: Callable[..., Path]) -> None:
    data = load_dataset(make_fer_csv(n_train=5, n_public=0, n_private=3), cache=False)
    with pytest.raises(FerEdgeError, match="split PublicTest is empty") as exc:
        data.split("PublicTest")
    assert str(data.source) in str(exc.value)
    with pytest.raises(FerEdgeError, match="unknown split"):
        data.split("Test")


@host_side
def test_train_on_a_file_without_training_rows_is_refused(make_fer_csv: Callable[..., Path], tmp_path: Path) -> None:
    path = make_fer_csv(n_train=0, n_public=4, n_private=4, name="tests_only.csv")
    result = CliRunner().invoke(app, ["train", "--data", str(path), "--out", str(tmp_path / "r"), "--epochs", "1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {path}: split Training is empty"]


def test_ferplus_on_generated_votes(tmp_path: Path) -> None:
    images, labels = synthetic_faces(4, 7)
    splits = ["Training", "Training", "PublicTest", "PrivateTest"]
    pixels = write_fer_csv(tmp_path / "pixels.csv.gz", images, labels, splits)
    votes = np.array(
        [
            [0, 8, 1, 0, 0, 0, 0, 0, 1, 0],  # happiness
            [3, 3, 0, 0, 0, 0, 0, 0, 0, 0],  # tie: dropped
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: dropped
            [0, 0, 0, 0, 0, 0, 0, 6, 0, 4],  # contempt
        ]
    )
    data = load_dataset(pixels, dataset="ferplus", votes=write_votes_csv(tmp_path / "new.csv", votes, splits))
    assert data.dataset == "ferplus" and data.class_names == FERPLUS_LABELS
    assert data.labels.tolist() == [1, 7]
    assert data.rows.tolist() == [0, 3]
    assert data.splits.tolist() == ["Training", "PrivateTest"]
    np.testing.assert_array_equal(data.images, images[[0, 3]])
    assert data.soft is not None and data.soft.shape == (2, 8)
    np.testing.assert_allclose(data.soft.sum(axis=1), 1.0)
    np.testing.assert_allclose(data.soft[0], np.eye(8)[1])
