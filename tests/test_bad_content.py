"""No silent wrong results and no tracebacks on bad content: pixel values, BOMs, quoted fields,
damaged parse caches, 16-bit PNGs, shuffled FERPlus votes, bad labels metadata, bad sidecars."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    invoke_cli,
    one_line_error,
    synthetic_faces,
    write_fer_csv,
    write_votes_csv,
)

from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.data import fer2013_csv, load_dataset
from fer_edge.data.ferplus import check_row_order, read_votes
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.model.shipped import shipped_model


def csv_with_pixel(tmp_path: Path, token: str) -> Path:
    images, labels = synthetic_faces(4, 7)
    path = write_fer_csv(tmp_path / "bad.csv", images, labels, ["Training", "Training", "PublicTest", "PrivateTest"])
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")
    pixels = fields[1].split()
    pixels[100] = token
    lines[3] = ",".join([fields[0], " ".join(pixels), fields[2]])
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- pixel values ------------------------------------------------------------------------------


def _numpy1_fromstring(text: str, dtype: object, sep: str) -> np.ndarray:
    """NumPy 1.x (JetPack 5): warn at the first bad token and return what was read so far."""
    good = []
    for token in text.split():
        try:
            good.append(int(token))
        except ValueError:
            warnings.warn("string or file could not be read to its end due to unmatched data", DeprecationWarning,
                          stacklevel=2)
            break
    return np.asarray(good, dtype=np.int32)


def _numpy2_fromstring(text: str, dtype: object, sep: str) -> np.ndarray:
    raise ValueError("string or file could not be read to its end due to unmatched data")


@pytest.mark.parametrize("numpy", ["installed", "numpy1", "numpy2"])
@pytest.mark.parametrize("token", ["abc", "12.5", '"7"', "-3", "300", "²"])
def test_bad_pixel_values_are_one_line_naming_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numpy: str, token: str
) -> None:
    path = csv_with_pixel(tmp_path, token)
    if numpy != "installed":
        fake = _numpy1_fromstring if numpy == "numpy1" else _numpy2_fromstring
        monkeypatch.setattr(fer2013_csv.np, "fromstring", fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak out as a warning either
        with pytest.raises(FerEdgeError) as info:
            load_dataset(path, cache=False)
    assert str(info.value) == f"{path}:4: pixel value {token!r} is not an integer in 0..255"


def test_bad_pixel_value_via_the_cli(tmp_path: Path) -> None:
    path = csv_with_pixel(tmp_path, "1.0")
    line = one_line_error(invoke_cli("evaluate", shipped_model("fer2013", "fp32"), "--data", path, "--device", "cpu"))
    assert line == f"error: {path}:4: pixel value '1.0' is not an integer in 0..255"


# ---- how spreadsheets write CSVs: a BOM, quoted fields ---------------------------------------------


def test_a_utf8_bom_and_quoted_fields_read_like_the_plain_file(make_fer_csv: Callable[..., Path]) -> None:
    plain_path = make_fer_csv(n_train=6, n_public=2, n_private=2, name="plain.csv")
    plain = load_dataset(plain_path, cache=False)
    lines = plain_path.read_text().splitlines()
    quoted = [",".join(f'"{f}"' for f in line.split(",")) for line in lines]
    for name, text in (("bom.csv", "\ufeff" + "\n".join(lines)), ("quoted.csv", "\ufeff" + "\r\n".join(quoted))):
        path = plain_path.with_name(name)
        path.write_bytes(text.encode("utf-8"))
        data = load_dataset(path, cache=False)
        np.testing.assert_array_equal(data.images, plain.images)
        np.testing.assert_array_equal(data.labels, plain.labels)
        assert data.splits.tolist() == plain.splits.tolist()


def test_a_votes_file_with_a_bom_reads(tmp_path: Path) -> None:
    votes = np.zeros((3, 10), dtype=np.int64)
    votes[:, 1] = 10
    path = write_votes_csv(tmp_path / "v.csv", votes, ["Training"] * 3)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    counts, usage, names = read_votes(path)
    assert counts.tolist() == votes.tolist() and usage.tolist() == ["Training"] * 3
    assert names == ["fer0000000.png", "fer0000001.png", "fer0000002.png"]


# ---- the parse cache -----------------------------------------------------------------------------


WRONG_CONTENT = {  # caches that read, but cannot be what a parse gave
    "wrong image shape": lambda d: {**d, "images": d["images"][:, :24, :24].copy()},
    "wrong image type": lambda d: {**d, "images": d["images"].astype(np.float32)},
    "label out of range": lambda d: {**d, "labels": np.where(np.arange(len(d["labels"])) == 3, 9, d["labels"])},
    "negative label": lambda d: {**d, "labels": np.where(np.arange(len(d["labels"])) == 0, -1, d["labels"])},
    "unknown split": lambda d: {**d, "splits": np.asarray(["Testing"] * len(d["splits"]))},
}


@pytest.mark.parametrize("damage", ["empty", "truncated", "missing array", *WRONG_CONTENT])
def test_a_damaged_parse_cache_is_discarded_reparsed_and_said_once(
    damage: str, make_fer_csv: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    path = make_fer_csv(n_train=10, n_public=2, n_private=2)
    first = load_dataset(path)
    (entry,) = (tmp_path / "cache").glob("*.npz")
    good = entry.read_bytes()
    if damage == "empty":
        entry.write_bytes(b"")
    elif damage == "truncated":
        entry.write_bytes(good[: len(good) // 2])
    elif damage == "missing array":
        with open(entry, "wb") as f:
            np.savez(f, images=first.images)
    else:
        with np.load(entry) as z:
            arrays = {k: z[k] for k in z.files}
        with open(entry, "wb") as f:
            np.savez(f, **WRONG_CONTENT[damage](arrays))
    capsys.readouterr()
    again = load_dataset(path)
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    err = capsys.readouterr().err
    assert err.count("discarded the damaged parse cache") == 1 and str(entry) in err
    load_dataset(path)  # rebuilt: no second note
    assert "discarded" not in capsys.readouterr().err
    assert entry.read_bytes() == good


def test_an_empty_cache_via_the_cli_is_not_aborted(
    make_fer_csv: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    path = make_fer_csv(n_train=10, n_public=2, n_private=20)
    load_dataset(path)
    (entry,) = (tmp_path / "cache").glob("*.npz")
    entry.write_bytes(b"")
    result = invoke_cli("evaluate", shipped_model("fer2013", "fp32"), "--data", path, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    assert "Aborted" not in result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["n"] == 20


# ---- 16-bit PNGs in image folders ------------------------------------------------------------------


def test_16_bit_pngs_are_scaled_not_clipped_to_white(tmp_path: Path) -> None:
    from PIL import Image

    faces, _ = synthetic_faces(3, 7, seed=5)
    for i, (cls, face) in enumerate(zip(("happy", "sad", "angry"), faces)):
        folder = tmp_path / "faces" / "train" / cls
        folder.mkdir(parents=True)
        wide = face.astype(np.uint16) * 257  # the same picture at 16 bits
        Image.fromarray(wide).save(folder / f"f{i}.png")
        assert Image.open(folder / f"f{i}.png").mode.startswith("I")
    data = load_dataset(tmp_path / "faces", cache=False)
    by_label = {FER2013_LABELS[int(label)]: img for label, img in zip(data.labels, data.images)}
    for cls, face in zip(("happy", "sad", "angry"), faces):
        np.testing.assert_array_equal(by_label[cls], face)


# ---- FERPlus votes: the join by position is checked with 'Image name' --------------------------


def _votes(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    votes = np.zeros((n, 10), dtype=np.int64)
    votes[np.arange(n), rng.integers(0, 8, n)] = 10
    return votes


def test_votes_shuffled_within_a_split_are_refused(tmp_path: Path) -> None:
    n = 60
    splits = ["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    images, labels = synthetic_faces(n, 7)
    data = write_fer_csv(tmp_path / "fer.csv", images, labels, splits)
    path = write_votes_csv(tmp_path / "votes.csv", _votes(n), splits)
    assert len(load_dataset(data, dataset="ferplus", votes=path, cache=False)) == n  # in order: fine
    lines = path.read_text().splitlines()
    body = lines[1:41]
    rng = np.random.default_rng(1)
    shuffled = [body[i] for i in rng.permutation(len(body))]  # Usage still matches row by row
    path.write_text("\n".join([lines[0], *shuffled, *lines[41:]]) + "\n")
    with pytest.raises(FerEdgeError, match=r"votes\.csv:\d+: \d+ of the 40 Training rows are out of order"):
        load_dataset(data, dataset="ferplus", votes=path, cache=False)
    line = one_line_error(invoke_cli("evaluate", shipped_model("ferplus", "fp32"), "--data", data, "--votes", path,
                                 "--device", "cpu"))
    assert "out of order by 'Image name'" in line and "original order" in line


def test_the_real_votes_file_is_in_order(shared_data: Path) -> None:
    """Its four repeated names and 173 blank ones must not trip the check."""
    votes, usage, names = read_votes(shared_data / "fer2013new.csv")
    check_row_order(names, usage, shared_data / "fer2013new.csv", votes)
    assert sum(1 for n in names if not n) == 173  # the blanks exist, on not-a-face rows, and pass


@pytest.mark.parametrize("order", ["shuffled", "in order"])
def test_votes_whose_names_were_blanked_cannot_vouch_for_their_order(tmp_path: Path, order: str) -> None:
    """Blank names used to be skipped: a shuffled file with blank names passed and mislabelled."""
    n = 60
    splits = ["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    data = write_fer_csv(tmp_path / "fer.csv", *synthetic_faces(n, 7), splits)
    path = write_votes_csv(tmp_path / "votes.csv", _votes(n), splits)
    lines = path.read_text().splitlines()
    body = [line.replace(f",fer{i:07d}.png,", ",,") for i, line in enumerate(lines[1:41])]
    if order == "shuffled":
        body = [body[i] for i in np.random.default_rng(1).permutation(len(body))]
    path.write_text("\n".join([lines[0], *body, *lines[41:]]) + "\n")
    with pytest.raises(FerEdgeError, match=r"votes\.csv:\d+: 40 of the 40 Training rows have no 'Image name' "
                       r"although their votes say it is a face.*too few names remain"):
        load_dataset(data, dataset="ferplus", votes=path, cache=False)
    line = one_line_error(invoke_cli("evaluate", shipped_model("ferplus", "fp32"), "--data", data, "--votes", path,
                                 "--device", "cpu"))
    assert "too few names remain" in line


def test_blank_names_on_not_a_face_rows_pass(tmp_path: Path) -> None:
    """As in the real file: a blank name where every vote says not-a-face is expected."""
    n = 60
    splits = ["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    data = write_fer_csv(tmp_path / "fer.csv", *synthetic_faces(n, 7), splits)
    votes = _votes(n)
    votes[5:15] = 0
    votes[5:15, 9] = 10  # NF
    path = write_votes_csv(tmp_path / "votes.csv", votes, splits)
    lines = path.read_text().splitlines()
    for i in range(5, 15):
        lines[i + 1] = lines[i + 1].replace(f",fer{i:07d}.png,", ",,")
    path.write_text("\n".join(lines) + "\n")
    assert len(load_dataset(data, dataset="ferplus", votes=path, cache=False)) == n - 10


@pytest.mark.parametrize("count", ["99999999999999999999999", "-99999999999999999999999", "1000001"])
def test_a_vote_count_too_big_for_an_integer_is_one_line(tmp_path: Path, count: str) -> None:
    n = 6
    splits = ["Training"] * 2 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    data = write_fer_csv(tmp_path / "fer.csv", *synthetic_faces(n, 7), splits)
    path = write_votes_csv(tmp_path / "votes.csv", _votes(n), splits)
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")
    fields[4] = count
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    line = one_line_error(invoke_cli("evaluate", shipped_model("ferplus", "fp32"), "--data", data, "--votes", path,
                                 "--device", "cpu"))
    assert "votes.csv:4: " in line and "vote count" in line


# ---- model metadata and sidecars -------------------------------------------------------------------


def _onnx_with_labels(tmp_path: Path, labels: str) -> Path:
    import onnx

    from fer_edge.model.onnx_contract import set_metadata

    model = onnx.load(str(shipped_model("fer2013", "fp32")))
    set_metadata(model, {"labels": labels})
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("labels", ["angry,disgust", "{not json", '{"a": 1}', "[]", "[1, 2]"])
@pytest.mark.parametrize("command", ["info", "evaluate", "bench", "quantize"])
def test_labels_metadata_that_is_not_a_json_list(tmp_path: Path, labels: str, command: str) -> None:
    model = _onnx_with_labels(tmp_path, labels)
    data = write_fer_csv(tmp_path / "f.csv", *synthetic_faces(3, 7), ["Training", "PublicTest", "PrivateTest"])
    args = {
        "info": ["info", model],
        "evaluate": ["evaluate", model, "--data", data, "--device", "cpu"],
        "bench": ["bench", model, "--device", "cpu", "--min-time", "0.01", "--min-iters", "1", "--batch", "1"],
        "quantize": ["quantize", model, "--data", data, "--out", tmp_path / "q.onnx"],
    }[command]
    result = invoke_cli(*args)
    assert "Traceback" not in result.output and result.exit_code != 0, result.output
    assert "labels" in result.output and "odd.onnx" in result.output


SIDECARS: dict[str, bytes] = {
    "binary": bytes(range(256)),
    "a JSON list": b"[1, 2, 3]",
    "not JSON": b"{ nope",
    "wrong types": json.dumps({"format": "fer-edge-engine", "format_version": 1, "tensorrt_version": 10,
                               "gpu_name": "x", "compute_capability": 8.7, "precision": "int8", "profile": {},
                               "source_onnx": "m", "source_onnx_sha256": "0", "labels": ["a"], "dataset": "d",
                               "engine_sha256": "0", "engine_bytes": 4, "build_command": "b", "built_at": "t",
                               "build_seconds": 1.0}).encode(),
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("case", list(SIDECARS))
def test_a_bad_sidecar_is_one_line(tmp_path: Path, case: str) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    (tmp_path / "m.engine.json").write_bytes(SIDECARS[case])
    line = one_line_error(invoke_cli("info", engine))
    assert "m.engine.json" in line and "sidecar" in line


# ---- evaluate --record -------------------------------------------------------------------------------


def _faces(tmp_path: Path, n_private: int) -> Path:
    images, labels = synthetic_faces(n_private + 2, 7, seed=2)
    splits = ["Training", "PublicTest"] + ["PrivateTest"] * n_private
    return write_fer_csv(tmp_path / "faces.csv", images, labels, splits)


def test_record_refuses_the_installed_package(tmp_path: Path) -> None:
    data = _faces(tmp_path, 10)
    before = shipped_model("fer2013", "int8").read_bytes()
    for model in ([], [shipped_model("fer2013", "int8")]):
        line = one_line_error(invoke_cli("evaluate", *model, "--data", data, "--device", "cpu", "--record"))
        assert "inside the installed fer-edge package" in line and "copy the model elsewhere" in line
    assert shipped_model("fer2013", "int8").read_bytes() == before


def _metrics(path: Path) -> dict[str, object]:
    from fer_edge.model.onnx_contract import read_model_metadata

    return json.loads(read_model_metadata(path)["metrics"])


def test_record_states_what_it_measured_and_keeps_a_figure_from_the_full_split(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(shipped_model("fer2013", "fp32"), model)
    recorded = _metrics(model)["PrivateTest"]  # measured on all 3589 PrivateTest images
    data = _faces(tmp_path, 12)
    line = one_line_error(invoke_cli("evaluate", model, "--data", data, "--device", "cpu", "--record", "--json"))
    assert "PrivateTest here has 12 images, the full split 3589" in line and "--record-subset" in line
    assert _metrics(model)["PrivateTest"] == recorded
    from conftest import invoke_apart

    result = invoke_apart(app, ["evaluate", model, "--data", data, "--device", "cpu", "--record", "--record-subset",
                                "--json"])
    assert result.exit_code == 0, result.output
    accuracy = json.loads(result.stdout.strip().splitlines()[-1])["accuracy"]
    assert result.stderr.splitlines() == [
        f"recorded PrivateTest accuracy {accuracy:.2f}% in {model} (measured on PrivateTest, 12 images of faces.csv "
        "(not the full split))"
    ]
    metrics = _metrics(model)
    assert metrics["PrivateTest"] == accuracy
    assert metrics["measured_on"]["PrivateTest"] == {"images": 12, "data": "faces.csv", "full_split": False}


def test_record_without_a_previous_figure_records_with_its_image_count(tmp_path: Path) -> None:
    import onnx

    from fer_edge.model.onnx_contract import get_metadata

    model = tmp_path / "m.onnx"
    proto = onnx.load(str(shipped_model("fer2013", "fp32")))
    meta = {k: v for k, v in get_metadata(proto).items() if k != "metrics"}
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(model))
    data = _faces(tmp_path, 9)
    result = invoke_cli("evaluate", model, "--data", data, "--device", "cpu", "--record")
    assert result.exit_code == 0, result.output
    assert _metrics(model)["measured_on"]["PrivateTest"]["images"] == 9
