"""Loading a model file never runs code: crafted checkpoints are refused in one line, ours load."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.model.labels import FER2013_LABELS

torch = pytest.importorskip("torch")

from fer_edge.core.errors import FerEdgeError  # noqa: E402
from fer_edge.model.checkpoint import (  # noqa: E402
    FORMAT,
    load_checkpoint,
    numpy_rng_state,
    plain_numpy_rng_state,
    save_checkpoint,
)
from fer_edge.model.net import ModelConfig, build_model  # noqa: E402


class CreatesAFile:
    """Unpickling this calls ``os.makedirs(marker)``: what an attacker's ``__reduce__`` would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.makedirs, (str(self.marker),))


def crafted(path: Path, marker: Path, how: str) -> Path:
    payload = {"format": FORMAT, "model_config": {}, "state_dict": {}, "labels": [], "dataset": "fer2013",
               "metrics": CreatesAFile(marker)}
    if how == "zip":
        torch.save(payload, path)
    else:  # torch's legacy format: a stream of pickles, read by torch.load all the same
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(params=["zip", "legacy"])
def evil(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    return crafted(tmp_path / "evil.pt", marker, request.param), marker


def test_the_payload_really_runs_under_plain_pickle(evil: tuple[Path, Path]) -> None:
    """The crafted file is a real attack: torch.load(weights_only=False) creates the marker."""
    path, marker = evil
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_and_runs_nothing(evil: tuple[Path, Path]) -> None:
    path, marker = evil
    with pytest.raises(FerEdgeError) as info:
        load_checkpoint(path)
    assert not marker.exists()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: refused")
    assert "could run code" in message


@pytest.mark.parametrize("command", ["info", "export", "evaluate"])
def test_every_command_that_reads_a_checkpoint_refuses_in_one_line(
    evil: tuple[Path, Path], tmp_path: Path, command: str
) -> None:
    path, marker = evil
    args = {
        "info": ["info", str(path)],
        "export": ["export", str(path), "--out", str(tmp_path / "m.onnx")],
        "evaluate": ["evaluate", str(path), "--data", str(tmp_path / "faces.csv"), "--device", "cpu"],
    }[command]
    (tmp_path / "faces.csv").write_text("emotion,pixels,Usage\n")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: refused"), result.output
    assert not marker.exists()
    assert not (tmp_path / "m.onnx").exists()


def _payload(with_training_state: bool) -> dict[str, object]:
    config = ModelConfig(num_classes=7, base_filters=8, fc_width=16)
    model = build_model(config)
    payload: dict[str, object] = {
        "model_config": config.to_dict(), "arch": config.arch, "dataset": "fer2013",
        "labels": list(FER2013_LABELS), "state_dict": model.state_dict(), "epoch": 1,
        "metrics": {"PublicTest": 50.0}, "history": [{"epoch": 1, "val_acc": 50.0}],
    }
    if with_training_state:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        model(torch.zeros(2, 1, 48, 48)).sum().backward()
        opt.step()
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
        payload.update(optimizer=opt.state_dict(), scheduler=sched.state_dict(), rng={
            "python": random.getstate(), "numpy": plain_numpy_rng_state(np.random.get_state()),
            "torch": torch.get_rng_state()})
    return payload


def test_what_fer_edge_saves_needs_no_unsafe_type(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _payload(with_training_state=True))
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    ckpt = load_checkpoint(path)
    assert ckpt["labels"] == list(FER2013_LABELS) and "optimizer" in ckpt


def test_an_older_last_pt_with_a_numpy_rng_state_still_loads(tmp_path: Path) -> None:
    """Before this change ``rng.numpy`` was NumPy's tuple with an ndarray; resume must still work."""
    path = tmp_path / "old_last.pt"
    payload = _payload(with_training_state=True)
    state = np.random.get_state()
    payload["rng"] = {"python": random.getstate(), "numpy": state, "torch": torch.get_rng_state()}
    payload = {"format": FORMAT, "format_version": 1, "fer_edge_version": "0.1.0", **payload}
    torch.save(payload, path)  # as the old save_checkpoint did
    ckpt = load_checkpoint(path)
    restored = numpy_rng_state(ckpt["rng"]["numpy"])
    assert restored[0] == state[0] and np.array_equal(restored[1], state[1]) and restored[2:] == state[2:]


def test_the_plain_numpy_rng_state_round_trips() -> None:
    np.random.seed(7)
    np.random.normal()  # a cached gaussian is part of the state
    plain = plain_numpy_rng_state(np.random.get_state())
    expected = np.random.random(5)
    np.random.seed(99)
    np.random.set_state(numpy_rng_state(plain))
    assert np.array_equal(np.random.random(5), expected)


@pytest.mark.parametrize(
    "change",
    [
        {"state_dict": [1, 2]},
        {"labels": "angry"},
        {"labels": [1, 2]},
        {"model_config": "big"},
        {"metrics": [50.0]},
        {"model_config": {"num_classes": 7, "depth": "six"}},
        {"state_dict": {"conv.weight": torch.zeros(1)}},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}"[:40],
)
@pytest.mark.parametrize("command", ["info", "export", "evaluate"])
def test_wrong_typed_checkpoint_entries_are_one_line(tmp_path: Path, change: dict[str, object], command: str) -> None:
    from conftest import synthetic_faces, write_fer_csv

    path = tmp_path / "odd.pt"
    save_checkpoint(path, {**_payload(with_training_state=False), **change})
    data = write_fer_csv(tmp_path / "f.csv", *synthetic_faces(3, 7), ["Training", "PublicTest", "PrivateTest"])
    args = {
        "info": ["info", str(path)],
        "export": ["export", str(path), "--out", str(tmp_path / "m.onnx")],
        "evaluate": ["evaluate", str(path), "--data", str(data), "--device", "cpu"],
    }[command]
    result = CliRunner().invoke(app, args)
    if command == "info" and "state_dict" in change and isinstance(change["state_dict"], dict):
        assert result.exit_code == 0, result.output  # info reads no weights into a model
        return
    if command == "info" and "depth" in str(change):
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "checkpoint" in lines[0], result.output
    assert not (tmp_path / "m.onnx").exists()
