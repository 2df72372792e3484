"""Export: contract, opset, dynamic batch, metadata and PyTorch parity on a briefly trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import synthetic_faces
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.model.onnx_contract import contract_violations, read_model_metadata

torch = pytest.importorskip("torch")


def train_small_checkpoint(path: Path, steps: int = 30, seed: int = 0) -> Path:
    """A narrow version of the real architecture, trained for a few SGD steps on synthetic faces."""
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: one thread is faster, and immune to a busy machine
    try:
        return _train(path, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(path: Path, steps: int, seed: int) -> Path:
    from fer_edge.model.checkpoint import save_checkpoint
    from fer_edge.model.net import ModelConfig, build_model

    config = ModelConfig(base_filters=8, fc_width=64)
    model = build_model(config)
    images, labels = synthetic_faces(512, len(FER2013_LABELS), seed=seed)
    x = torch.from_numpy(images[:, None].astype(np.float32))
    y = torch.from_numpy(labels)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step in range(steps):
        idx = torch.arange(step * 32, step * 32 + 32) % len(x)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    save_checkpoint(path, {
        "model_config": config.to_dict(), "arch": config.arch, "dataset": "fer2013",
        "labels": list(FER2013_LABELS), "state_dict": model.state_dict(), "epoch": 1,
        "metrics": {"PublicTest": {"accuracy": acc}, "PrivateTest": {"accuracy": acc}, "best_epoch": 1},
    })
    return path


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_small_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt")


def test_export_follows_the_contract_and_matches_pytorch(small_checkpoint: Path, tmp_path: Path) -> None:
    from fer_edge.build.export import export_checkpoint, onnx_logits

    out = tmp_path / "model.onnx"
    report = export_checkpoint(small_checkpoint, out)
    assert report.ok and report.max_abs_diff <= 1e-4 and report.agreement >= 0.999

    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert contract_violations(proto) == []
    assert proto.opset_import[0].version == 17
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]

    meta = read_model_metadata(out)
    assert json.loads(meta["labels"]) == list(FER2013_LABELS)
    assert meta["dataset"] == "fer2013" and meta["arch"] == "salimov-cnn-d6-k2" and meta["fer_edge_version"]
    assert json.loads(meta["metrics"])["PublicTest"]["accuracy"] > 0
    assert meta["precision"] == "fp32"
    # BatchNorm is folded into the convolutions in eval mode.
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)

    # Dynamic batch; raw uint8 pixel values in, same top-1 as PyTorch on learnable faces.
    from fer_edge.model.checkpoint import load_checkpoint, model_from_checkpoint

    images, labels = synthetic_faces(37, 7, seed=5)
    logits = onnx_logits(out, images, batch=10)  # batches of 10, 10, 10, 7
    assert logits.shape == (37, 7)
    with torch.no_grad():
        model = model_from_checkpoint(load_checkpoint(small_checkpoint))
        ref = model(torch.from_numpy(images[:, None])).numpy()
    np.testing.assert_allclose(logits, ref, atol=1e-4)
    assert float(np.mean(logits.argmax(1) == labels)) > 0.5


def test_export_cli_prints_parity_on_real_data(small_checkpoint: Path, tmp_path: Path,
                                               make_fer_csv: object) -> None:
    csv = make_fer_csv(n_train=20, n_public=80, n_private=10)  # type: ignore[operator]
    out = tmp_path / "cli.onnx"
    result = CliRunner().invoke(app, ["export", str(small_checkpoint), "--out", str(out), "--data", str(csv)])
    assert result.exit_code == 0, result.output
    assert "parity on 80 PublicTest images" in result.output
    assert "top-1 agreement 100.00%" in result.output
    assert "accuracy: PyTorch" in result.output
    assert out.exists()


def test_export_rejects_bad_checkpoints_without_writing(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "never.onnx"
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    for bad, message in [(junk, "not a readable PyTorch checkpoint"), (foreign, "not a fer-edge checkpoint"),
                         (tmp_path / "missing.pt", "file not found")]:
        result = runner.invoke(app, ["export", str(bad), "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert not out.exists()
        assert not list(tmp_path.glob(".never.onnx*"))
