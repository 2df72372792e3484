"""Training through the CLI: a 1-epoch smoke run, evaluate/info on its checkpoint, seeds, resume, atomic writes."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import synthetic_faces, write_fer_csv
from typer.testing import CliRunner, Result

from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS

torch = pytest.importorskip("torch")

from fer_edge.data import FaceData  # noqa: E402
from fer_edge.model.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from fer_edge.train import loop  # noqa: E402
from fer_edge.train.augment import AugmentConfig, augment  # noqa: E402

# One torch thread: on this shared 2-core machine two threads fighting other jobs are slower.
CPU = ["--device", "cpu", "--no-amp", "--threads", "1"]
TIMING = ("epoch_seconds", "images_per_second")


@pytest.fixture(autouse=True, scope="module")
def _restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def invoke(*args: str | Path | int) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def make_csv(path: Path, n_train: int, n_public: int, n_private: int, seed: int = 0) -> Path:
    images, labels = synthetic_faces(n_train + n_public + n_private, len(FER2013_LABELS), seed=seed)
    splits = ["Training"] * n_train + ["PublicTest"] * n_public + ["PrivateTest"] * n_private
    return write_fer_csv(path, images, labels, splits)


def without_timing(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the 1-epoch smoke run ---------------------------------------------------------------------


@dataclass
class Run:
    data: Path
    out: Path
    seconds: float
    result: Result


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("smoke")
    data = make_csv(root / "faces.csv", n_train=256, n_public=32, n_private=32)
    out = root / "run"
    t0 = time.perf_counter()
    result = invoke("train", "--data", data, "--out", out, "--epochs", 1, "--limit", 256, "--batch-size", 64, *CPU)
    seconds = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    return Run(data, out, seconds, result)


def test_one_epoch_run_writes_every_artifact(smoke_run: Run) -> None:
    out = smoke_run.out
    for name in ("best.pt", "last.pt", "history.csv", "history.json", "learning_curve.png", "metrics.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    # measured about 20-25 s on this busy 2-core machine
    assert smoke_run.seconds < 60, f"1-epoch smoke run took {smoke_run.seconds:.1f} s"

    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1]
    row = history[0]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds", "images_per_second"} <= set(row)
    assert np.isfinite(row["train_loss"]) and 0 <= row["val_acc"] <= 100
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["train_loss"]) == row["train_loss"]
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    best = load_checkpoint(out / "best.pt")
    assert best["dataset"] == "fer2013" and best["labels"] == list(FER2013_LABELS)
    assert best["epoch"] == 1 and best["arch"] == "salimov-cnn-d6-k2"
    assert best["train_args"]["limit"] == 256 and best["train_args"]["seed"] == 0
    assert {"PublicTest", "PrivateTest", "best_epoch"} <= set(best["metrics"])
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 1
    assert {"optimizer", "scheduler", "rng", "ema_state_dict"} <= set(last)
    assert "256 fer2013 images" in smoke_run.result.output


def test_evaluate_reads_the_checkpoint(smoke_run: Run) -> None:
    result = invoke("evaluate", smoke_run.out / "best.pt", "--data", smoke_run.data, "--split", "PrivateTest", "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["n"] == 32 and report["split"] == "PrivateTest" and report["dataset"] == "fer2013"
    assert 0 <= report["accuracy"] <= 100
    assert sum(map(sum, report["confusion_matrix"])) == 32
    assert set(report["per_class"]) == set(FER2013_LABELS)
    # the figure train recorded in best.pt is the one evaluate measures
    assert report["accuracy"] == load_checkpoint(smoke_run.out / "best.pt")["metrics"]["PrivateTest"]


def test_info_shows_parameters_and_dataset(smoke_run: Run) -> None:
    result = invoke("info", smoke_run.out / "best.pt", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["parameters"] == 3_851_335
    assert info["dataset"] == "fer2013" and info["labels"] == list(FER2013_LABELS)
    assert info["arch"] == "salimov-cnn-d6-k2" and info["epoch"] == 1
    assert "PrivateTest" in info["metrics"]
    table = invoke("info", smoke_run.out / "best.pt")
    assert table.exit_code == 0 and "3,851,335" in table.stdout


def test_training_into_a_finished_run_without_resume_is_refused(smoke_run: Run) -> None:
    before = digest(smoke_run.out / "last.pt")
    result = invoke("train", "--data", smoke_run.data, "--out", smoke_run.out, "--epochs", 1, *CPU)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "last.pt" in lines[0] and "--resume" in lines[0] and str(smoke_run.out) in lines[0]
    assert digest(smoke_run.out / "last.pt") == before


# ---- seeds and resume --------------------------------------------------------------------------

SMALL = ["--epochs", "2", "--limit", "64", "--batch-size", "32", "--seed", "3", *CPU]


@dataclass
class ResumeRuns:
    data: Path
    straight: Path
    resumed: Path
    after_interrupt: list[dict[str, Any]]
    interrupt: Result


def _interrupt_after_first_epoch(original: Any) -> Any:
    def write_then_stop(self: loop.Trainer) -> None:
        original(self)
        if len(self.history) == 1:
            raise KeyboardInterrupt  # as a Ctrl-C between epochs

    return write_then_stop


@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory: pytest.TempPathFactory) -> ResumeRuns:
    root = tmp_path_factory.mktemp("resume")
    data = make_csv(root / "faces.csv", n_train=64, n_public=16, n_private=16, seed=1)
    straight, resumed = root / "straight", root / "resumed"
    result = invoke("train", "--data", data, "--out", straight, *SMALL)
    assert result.exit_code == 0, result.output
    with pytest.MonkeyPatch.context() as m:
        m.setattr(loop.Trainer, "_write_history", _interrupt_after_first_epoch(loop.Trainer._write_history))
        interrupt = invoke("train", "--data", data, "--out", resumed, *SMALL)
    after_interrupt = json.loads((resumed / "history.json").read_text())
    result = invoke("train", "--data", data, "--out", resumed, "--resume", *SMALL)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "after epoch 1" in result.output
    return ResumeRuns(data, straight, resumed, after_interrupt, interrupt)


def test_interrupt_leaves_a_resumable_last_checkpoint(resume_runs: ResumeRuns) -> None:
    assert resume_runs.interrupt.exit_code == 130
    assert "continue with --resume" in resume_runs.interrupt.output
    assert "Traceback" not in resume_runs.interrupt.output
    assert [row["epoch"] for row in resume_runs.after_interrupt] == [1]


def test_same_seed_gives_the_same_history(resume_runs: ResumeRuns) -> None:
    straight = json.loads((resume_runs.straight / "history.json").read_text())
    assert without_timing(straight[:1]) == without_timing(resume_runs.after_interrupt)


def test_resume_continues_exactly_where_it_stopped(resume_runs: ResumeRuns) -> None:
    straight = json.loads((resume_runs.straight / "history.json").read_text())
    resumed = json.loads((resume_runs.resumed / "history.json").read_text())
    assert [row["epoch"] for row in resumed] == [1, 2]
    assert resumed[0] == resume_runs.after_interrupt[0]  # epoch 1's row is kept as it was
    assert abs(resumed[-1]["train_loss"] - straight[-1]["train_loss"]) < 1e-4
    assert without_timing(resumed) == without_timing(straight)
    a = load_checkpoint(resume_runs.straight / "last.pt")["state_dict"]
    b = load_checkpoint(resume_runs.resumed / "last.pt")["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_resume_with_another_length_is_refused(resume_runs: ResumeRuns) -> None:
    before = digest(resume_runs.resumed / "last.pt")
    args = [a if a != "2" else "3" for a in SMALL]
    result = invoke("train", "--data", resume_runs.data, "--out", resume_runs.resumed, "--resume", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "run of 2 epochs" in lines[0] and "last.pt" in lines[0]
    assert digest(resume_runs.resumed / "last.pt") == before


def test_resume_without_a_run_is_refused(tmp_path: Path, resume_runs: ResumeRuns) -> None:
    result = invoke("train", "--data", resume_runs.data, "--out", tmp_path / "empty", "--resume", *SMALL)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {tmp_path / 'empty'}: nothing to resume: no last.pt here"]


# ---- atomic checkpoint writes ------------------------------------------------------------------


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_interrupted_checkpoint_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]
) -> None:
    path = tmp_path / "last.pt"
    base = {"model_config": {}, "dataset": "fer2013", "labels": list(FER2013_LABELS), "state_dict": {}}
    save_checkpoint(path, {**base, "epoch": 1})
    real_write = Path.write_bytes

    def write_half_then_fail(self: Path, data: bytes) -> int:
        real_write(self, data[:50])  # a kill (or a full disk) mid-write: the file is cut short
        raise failure("killed mid-write")

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    # an OSError while writing is a one-line user error naming the file; Ctrl-C stays Ctrl-C
    expected = FerEdgeError if failure is OSError else failure
    with pytest.raises(expected) as info:
        save_checkpoint(path, {**base, "epoch": 2})
    monkeypatch.undo()
    if expected is FerEdgeError:
        assert str(path) in str(info.value) and "previous file is unchanged" in str(info.value)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


# ---- pieces of the loop ------------------------------------------------------------------------


def test_augment_is_seeded_and_keeps_shape_and_range() -> None:
    x = torch.from_numpy(synthetic_faces(8, 7)[0]).float().unsqueeze(1)
    cfg = AugmentConfig()
    a = augment(x, cfg, torch.Generator().manual_seed(5))
    b = augment(x, cfg, torch.Generator().manual_seed(5))
    c = augment(x, cfg, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 255


def test_augment_flip_alone_mirrors_the_face() -> None:
    x = torch.from_numpy(synthetic_faces(4, 7)[0]).float().unsqueeze(1)
    only_flip = AugmentConfig(flip=1.0, rotate_deg=0.0, scale=(1.0, 1.0), shift=0.0, erase=0.0)
    out = augment(x, only_flip, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, torch.flip(x, dims=[3]), rtol=0, atol=1e-3)
    nothing = AugmentConfig(flip=0.0, rotate_deg=0.0, scale=(1.0, 1.0), shift=0.0, erase=0.0)
    torch.testing.assert_close(augment(x, nothing, torch.Generator().manual_seed(0)), x, rtol=0, atol=1e-3)


def test_without_public_test_a_stratified_tenth_of_training_is_held_out() -> None:
    images, labels = synthetic_faces(200, 7, seed=2)
    data = FaceData(
        images=images,
        labels=labels,
        splits=np.array(["Training"] * 180 + ["PrivateTest"] * 20),
        class_names=FER2013_LABELS,
        dataset="fer2013",
        source="folders",
    )
    train, val, name = loop.split_train_val(data, seed=0)
    assert name.startswith("held-out")
    assert len(train) + len(val) == 180
    assert 14 <= len(val) <= 22
    assert not set(train.rows.tolist()) & set(val.rows.tolist())
    assert set(val.labels.tolist()) == set(data.split("Training").labels.tolist())  # every class represented
    again = loop.split_train_val(data, seed=0)[1]
    np.testing.assert_array_equal(val.rows, again.rows)
