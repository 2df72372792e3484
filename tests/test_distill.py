"""Distillation: the teacher file, its checks, the KL term, flip-aware targets, stacked teachers, the script."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, synthetic_faces, write_fer_csv
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.data import FaceData, load_dataset
from fer_edge.model.labels import FER2013_LABELS, FERPLUS_LABELS

torch = pytest.importorskip("torch")

from fer_edge.model.checkpoint import load_checkpoint  # noqa: E402
from fer_edge.model.net import FerCNN, ModelConfig  # noqa: E402
from fer_edge.train.augment import AugmentConfig, augment, augment_with_flip, mix  # noqa: E402
from fer_edge.train.distill import Distiller  # noqa: E402
from fer_edge.train.stacked import StackedFerCNN  # noqa: E402
from fer_edge.train.teacher_file import (  # noqa: E402
    FORMAT,
    FORMAT_VERSION,
    TeacherOutputs,
    load_teacher_outputs,
    save_teacher_outputs,
    training_fingerprint,
)
from fer_edge.train.teachers import TeacherTrainer, parse_members  # noqa: E402

CPU = ["--device", "cpu", "--no-amp", "--threads", "1"]
C = len(FER2013_LABELS)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def faces(n_train: int = 60, n_test: int = 10, seed: int = 0, dataset: str = "fer2013") -> FaceData:
    labels_all = FER2013_LABELS if dataset == "fer2013" else FERPLUS_LABELS
    images, labels = synthetic_faces(n_train + 2 * n_test, len(labels_all), seed=seed)
    splits = np.array(["Training"] * n_train + ["PublicTest"] * n_test + ["PrivateTest"] * n_test)
    return FaceData(images, labels, splits, labels_all, dataset, "faces.csv")


def one_hot_teacher(data: FaceData, scale: float = 10.0, members: int = 1) -> TeacherOutputs:
    """A 'teacher' that knows every label: logits ``scale * one_hot``; flipped, one class further."""
    out = TeacherOutputs(
        meta={
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": data.dataset,
            "labels": list(data.class_names),
            "training_sha256": training_fingerprint(data),
            "members": [{"seed": i} for i in range(members)],
        }
    )
    for key, part in [("train", data.split("Training")), ("PublicTest", data.split("PublicTest"))]:
        eye = np.eye(data.num_classes, dtype=np.float32)
        out.rows[key] = part.rows
        out.logits[key] = np.stack([scale * eye[part.labels]] * members)
        out.logits[f"{key}_flip"] = np.stack([scale * eye[(part.labels + 1) % data.num_classes]] * members)
    return out


# ---- the teacher file ------------------------------------------------------------------------------


def test_teacher_file_round_trip(tmp_path: Path) -> None:
    data = faces()
    outputs = one_hot_teacher(data, scale=3.3, members=2)
    outputs.logits["train"][1] += np.linspace(-1, 1, outputs.logits["train"][1].size).reshape(-1, C)
    save_teacher_outputs(tmp_path / "t.npz", outputs)
    back = load_teacher_outputs(tmp_path / "t.npz")
    assert back.meta == outputs.meta and back.members == 2
    assert set(back.logits) == set(outputs.logits)
    for key, value in outputs.logits.items():
        assert back.logits[key].dtype == np.float32
        np.testing.assert_allclose(back.logits[key], value, atol=2e-3)  # float16 storage
    np.testing.assert_array_equal(back.rows["train"], data.split("Training").rows)
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        assert z["train"].dtype == np.float16
    # the ensemble distribution: mean of the members' softmax at T
    z = back.logits["train"] / 2.0
    p = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(back.probabilities("train", 2.0), (p / p.sum(-1, keepdims=True)).mean(0), rtol=1e-6)


def test_teacher_file_refuses_junk(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FerEdgeError, match="not a readable teacher file"):
        load_teacher_outputs(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(FerEdgeError, match="not a fer-edge teacher file"):
        load_teacher_outputs(tmp_path / "other.npz")
    bad = one_hot_teacher(faces())
    bad.logits["train"] = np.full_like(bad.logits["train"], np.nan)
    with pytest.raises(FerEdgeError, match="NaN"):
        save_teacher_outputs(tmp_path / "nan.npz", bad)
    with pytest.raises(FerEdgeError, match="not found"):
        load_teacher_outputs(tmp_path / "absent.npz")


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (faces(seed=1), "other Training images"),
        (faces(n_train=59), "covers 60 Training images"),
        (faces(dataset="ferplus"), "made for fer2013, not ferplus"),
    ],
)
def test_mismatched_teacher_file_is_refused(tmp_path: Path, other: FaceData, message: str) -> None:
    save_teacher_outputs(tmp_path / "t.npz", one_hot_teacher(faces()))
    with pytest.raises(FerEdgeError, match=message):
        Distiller.from_file(tmp_path / "t.npz", other, other.split("Training"), 4.0, 0.5, torch.device("cpu"))


# ---- the KL term and the flip choice ---------------------------------------------------------------


def test_kd_loss_is_t2_kl_and_picks_flipped_targets(tmp_path: Path) -> None:
    data = faces()
    save_teacher_outputs(tmp_path / "t.npz", one_hot_teacher(data, scale=2.0))
    t = 3.0
    d = Distiller.from_file(tmp_path / "t.npz", data, data.split("Training"), t, 0.25, torch.device("cpu"))
    labels = torch.from_numpy(data.split("Training").labels)
    idx = torch.arange(8)
    student = torch.randn(8, C)
    flipped = torch.tensor([True, False] * 4)
    shown = torch.where(flipped, (labels[idx] + 1) % C, labels[idx])
    p = torch.softmax(2.0 * torch.eye(C)[shown] / t, dim=1)
    expected = t**2 * (p * (p.log() - torch.log_softmax(student / t, dim=1))).sum(1).mean()
    assert float(d.kd_loss(student, idx, flipped)) == pytest.approx(float(expected), rel=1e-5)
    # the student that outputs the teacher's logits has nothing left to learn from it
    assert float(d.kd_loss(2.0 * torch.eye(C)[shown], idx, flipped)) == pytest.approx(0.0, abs=1e-6)
    usual = torch.tensor(1.5)
    assert float(d.loss(usual, student, idx, flipped)) == pytest.approx(0.75 * 1.5 + 0.25 * float(expected), rel=1e-5)


def test_student_learns_from_a_one_hot_teacher_alone(tmp_path: Path) -> None:
    """Weight 1: no label term at all, yet a small student learns the labels through the KL term."""
    data = faces(n_train=140)
    save_teacher_outputs(tmp_path / "t.npz", one_hot_teacher(data))
    train = data.split("Training")
    d = Distiller.from_file(tmp_path / "t.npz", data, train, 2.0, 1.0, torch.device("cpu"))
    torch.manual_seed(0)
    model = FerCNN(ModelConfig(depth=3, base_filters=4, fc_width=32, fc_layers=1, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.from_numpy(train.images).unsqueeze(1).float()
    no_flip = torch.zeros(len(train), dtype=torch.bool)
    for _ in range(20):
        idx = torch.randint(0, len(train), (32,))
        loss = d.loss(torch.tensor(123.0), model(x[idx]), idx, no_flip[idx])  # the usual term is weighted 0
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    acc = float((model(x).argmax(1).numpy() == train.labels).mean())
    assert acc > 0.8, acc


def test_augment_reports_which_images_it_flipped() -> None:
    cfg = AugmentConfig(flip=0.5, rotate_deg=0.0, scale=(1.0, 1.0), shift=0.0, erase=0.0)
    x = torch.rand(64, 1, 48, 48) * 255
    out, flipped = augment_with_flip(x, cfg, torch.Generator().manual_seed(0))
    assert 10 < int(flipped.sum()) < 54
    torch.testing.assert_close(out[flipped], torch.flip(x[flipped], dims=[3]), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[~flipped], x[~flipped], atol=1e-3, rtol=0)
    # the plain augment draws the same numbers: same output for the same seed
    full = AugmentConfig()
    a = augment(x, full, torch.Generator().manual_seed(5))
    b, _ = augment_with_flip(x, full, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cutmix", [0.0, 1.0])
def test_mix_targets_follow_the_pixels(cutmix: float) -> None:
    n = 16
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 48, 48).contiguous()
    target = torch.eye(n)  # image i carries class i and pixel value i
    out, mixed = mix(x, target, torch.Generator().manual_seed(1), np.random.default_rng(1), alpha=1.0, cutmix=cutmix)
    torch.testing.assert_close(mixed.sum(1), torch.ones(n))
    # each image's mean pixel equals the target-weighted mean of the pixel values
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), mixed @ torch.arange(n, dtype=torch.float32))


# ---- stacked teachers ------------------------------------------------------------------------------


def test_stacked_network_is_exactly_its_members() -> None:
    config = ModelConfig(base_filters=4, fc_width=16, kernel_size=3)
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        m = FerCNN(config)
        for bn in (mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
        members.append(m.eval())
    stacked = StackedFerCNN.from_members(members).eval()
    x = torch.rand(5, 1, 48, 48) * 255
    out = stacked(x.expand(-1, 3, -1, -1))
    assert out.shape == (3, 5, C)
    for i, m in enumerate(members):
        torch.testing.assert_close(out[i], m(x), atol=1e-4, rtol=1e-4)
        state = stacked.member_state_dict(i)
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    # a gradient through member 0's output reaches member 0's slice only
    stacked.train()
    stacked(x.expand(-1, 3, -1, -1))[0].sum().backward()
    w = stacked.fc[0].weight.grad
    assert w is not None and w[0].abs().sum() > 0 and w[1:].abs().sum() == 0


def test_member_specs() -> None:
    groups = parse_members("d6k2f32x4, d5k3f48fc256x2", num_classes=7, dropout=0.3)
    assert [(c.depth, c.kernel_size, c.base_filters, c.fc_width, n) for c, n in groups] == [
        (6, 2, 32, 512, 4),
        (5, 3, 48, 256, 2),
    ]
    # the paper's network, parameter count unchanged
    assert sum(p.numel() for p in FerCNN(groups[0][0]).parameters()) == 3_851_335
    with pytest.raises(FerEdgeError, match="not like d6k2f32x4"):
        parse_members("resnet18", 7, 0.3)


def test_lr_factor_warms_up_and_anneals_to_zero() -> None:
    f = [TeacherTrainer.lr_factor(p / 100) for p in range(101)]
    assert f[0] < 0.1 and max(f) == pytest.approx(1.0, abs=0.02) and f[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(f[3:], f[4:]))


# ---- the script and the CLI, end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("teachers")
    images, labels = synthetic_faces(100, C, seed=4)
    images[90] = images[3]  # one PrivateTest image copied from Training
    labels[90] = labels[3]
    data = write_fer_csv(
        root / "faces.csv", images, labels, ["Training"] * 80 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    )
    out = root / "teachers"
    cmd = ["--data", str(data), "--out", str(out)]
    opts = ["--members", "d4k2f4fc16x2,d3k3f4fc16x1", "--epochs", "2", "--limit", "48", "--batch-size", "16"]
    code, stdout, stderr = run_script([*cmd, *opts, "--device", "cpu", "--threads", "1"])
    assert code == 0, stderr
    return data, out, {"stdout": stdout, "cmd": cmd}


def run_script(argv: list[str]) -> tuple[int, str, str]:
    """scripts/train_teachers.py in this process (a subprocess would spend seconds importing torch)."""
    spec = importlib.util.spec_from_file_location("train_teachers", REPO / "scripts" / "train_teachers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = module.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_teacher_script_writes_a_matching_file(teacher_run: tuple[Path, Path, dict]) -> None:
    data, out, info = teacher_run
    teachers = load_teacher_outputs(out / "teachers.npz")
    assert teachers.members == 3
    assert teachers.logits["train"].shape == (3, 80, C)  # every Training image, though it trained on 48
    assert teachers.logits["PrivateTest_flip"].shape == (3, 10, C)
    assert not np.allclose(teachers.logits["train"], teachers.logits["train_flip"])
    meta = json.loads((out / "teachers.json").read_text())
    assert meta["epochs_done"] == 2 and meta["stopped_by"] == "epochs" and len(meta["history"]) == 2
    assert [m["seed"] for m in meta["members"]] == [0, 1, 2]
    assert meta["ensemble"]["PrivateTest"]["n_without_train_duplicates"] == 9
    assert "ensemble PublicTest:" in info["stdout"] and "flip TTA" in info["stdout"]
    code, _, stderr = run_script([*info["cmd"], "--device", "cpu"])
    assert code == 2 and stderr.strip().endswith("already holds teachers.npz; choose another --out")


def test_time_budget_stops_cleanly(tmp_path: Path) -> None:
    data = faces(n_train=40)
    from fer_edge.train.teachers import TeacherConfig

    cfg = TeacherConfig(
        data="x",
        out=str(tmp_path),
        members="d3k2f4fc16x1",
        epochs=10_000,
        batch_size=8,
        device="cpu",
        time_budget=2.0,
        reserve=0.0,
        eval_every=1000,
    )
    outputs, report = TeacherTrainer(cfg, data).fit()
    assert outputs.meta["stopped_by"] == "time budget" and outputs.meta["epochs_done"] < 10_000
    assert report["history"][-1]["lr"] < 1e-3  # annealed to the end of the schedule before stopping
    assert outputs.logits["train"].shape == (1, 40, C)


def test_train_with_teacher_end_to_end(teacher_run: tuple[Path, Path, dict], tmp_path: Path) -> None:
    data, out, _ = teacher_run
    teacher = out / "teachers.npz"
    run = tmp_path / "student"
    args = ["train", "--data", str(data), "--out", str(run), "--epochs", "2", "--limit", "32", "--batch-size", "16"]
    kd = ["--teacher", str(teacher), "--kd-temperature", "3", "--kd-weight", "0.6"]
    # a time budget that one epoch already spends: it stops after epoch 1 and still scores best.pt
    result = CliRunner().invoke(app, [*args, *CPU, *kd, "--time-budget", "0.01"])
    assert result.exit_code == 0, result.output
    assert "stopping after epoch 1" in result.output
    assert len(json.loads((run / "history.json").read_text())) == 1
    best = load_checkpoint(run / "best.pt")
    assert best["metrics"]["stopped_by_time_budget_after_epoch"] == 1
    assert best["train_args"]["teacher"] == str(teacher) and best["train_args"]["kd_weight"] == 0.6
    assert len(best["train_args"]["teacher_sha256"]) == 64 and best["parameters"] == 3_851_335
    assert {"PublicTest_without_train_duplicates", "PrivateTest_without_train_duplicates"} <= set(best["metrics"])
    # resuming with another teacher (here: none) is refused
    again = CliRunner().invoke(app, [*args, *CPU, "--resume"])
    assert again.exit_code != 0 and "another --teacher file" in again.output


def test_train_refuses_a_teacher_file_for_other_data(teacher_run: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, out, _ = teacher_run
    images, labels = synthetic_faces(100, C, seed=9)
    other = write_fer_csv(tmp_path / "other.csv", images, labels, ["Training"] * 80 + ["PublicTest"] * 20)
    args = ["train", "--data", str(other), "--out", str(tmp_path / "s"), "--epochs", "1", *CPU]
    result = CliRunner().invoke(app, [*args, "--teacher", str(out / "teachers.npz")])
    assert result.exit_code != 0 and result.exception is not None
    assert "other Training images" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert load_dataset(other, cache=False).num_classes == C


def test_ferplus_teacher_file_is_tied_to_the_votes(tmp_path: Path) -> None:
    """FERPlus: the vote distributions are part of what a teacher file was made from."""
    data = faces(dataset="ferplus")
    soft = np.eye(len(FERPLUS_LABELS), dtype=np.float32)[data.labels]
    data.soft = soft
    save_teacher_outputs(tmp_path / "t.npz", one_hot_teacher(data))
    d = Distiller.from_file(tmp_path / "t.npz", data, data.split("Training"), 2.0, 0.5, torch.device("cpu"))
    assert d.probs.shape == (60, len(FERPLUS_LABELS))
    other_votes = faces(dataset="ferplus")
    other_votes.soft = 0.5 * soft + 0.5 / len(FERPLUS_LABELS)  # same majority labels, other vote shares
    with pytest.raises(FerEdgeError, match="other Training images or labels"):
        Distiller.from_file(
            tmp_path / "t.npz", other_votes, other_votes.split("Training"), 2.0, 0.5, torch.device("cpu")
        )
