"""The paper's CNN: parameter count, shapes for every depth/kernel of Table 3, raw-pixel input, checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS

torch = pytest.importorskip("torch")

from fer_edge.model.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: E402
from fer_edge.model.net import FerCNN, ModelConfig, build_model, count_parameters  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small batches on a shared 2-core machine: one thread is about 10x faster than two fighting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def default_model() -> FerCNN:
    torch.manual_seed(0)
    return build_model(ModelConfig()).eval()


def test_default_model_is_the_papers(default_model: FerCNN) -> None:
    n = count_parameters(default_model)
    assert 3_700_000 <= n <= 3_950_000
    assert n == 3_851_335
    convs = [m for m in default_model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 512, 1024]
    assert all(c.kernel_size == (2, 2) for c in convs)
    pools = [m for m in default_model.features if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 5  # after all but the first convolution
    linears = [m for m in default_model.classifier if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [512, 512, 512, 7]
    assert default_model.config.arch == "salimov-cnn-d6-k2"


@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
@pytest.mark.parametrize("depth", [2, 3, 4, 5, 6, 7])
def test_every_depth_and_kernel_trains_without_nan(depth: int, kernel: int) -> None:
    num_classes = 7 if (depth + kernel) % 2 else 8
    torch.manual_seed(depth * 10 + kernel)
    # a narrow width keeps the 24 configurations fast; the layer structure is the one under test
    model = build_model(
        ModelConfig(num_classes=num_classes, depth=depth, kernel_size=kernel, base_filters=4, fc_width=32)
    )
    model.train()
    x = torch.randint(0, 256, (2, 1, 48, 48), dtype=torch.uint8)
    logits = model(x)
    assert logits.shape == (2, num_classes)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, num_classes - 1]))
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == depth and all(c.kernel_size == (kernel, kernel) for c in convs)
    assert model.config.arch == f"salimov-cnn-d{depth}-k{kernel}"


@pytest.mark.parametrize("depth", [2, 7])
def test_full_width_extremes_give_logits(depth: int) -> None:
    model = build_model(ModelConfig(num_classes=8, depth=depth)).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 8)


def test_uint8_and_float_inputs_give_the_same_output(default_model: FerCNN) -> None:
    pixels = torch.randint(0, 256, (2, 1, 48, 48), dtype=torch.uint8)
    with torch.no_grad():
        a = default_model(pixels)
        b = default_model(pixels.float())
        c = default_model(pixels.double())
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_normalisation_lives_inside_the_model(default_model: FerCNN) -> None:
    # the model takes raw 0..255 pixels: the first layer sees (x - mean) / std, not x
    seen: list[Any] = []
    hook = default_model.features[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    try:
        with torch.no_grad():
            default_model(torch.full((1, 1, 48, 48), 255.0))
    finally:
        hook.remove()
    assert -3 < float(seen[0].max()) < 3
    # the statistics are constants of the architecture, not weights a checkpoint could lose
    assert not any(k in default_model.state_dict() for k in ("mean", "inv_std"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 1}, "depth must be in 2..7"),
        ({"depth": 8}, "depth must be in 2..7"),
        ({"kernel_size": 1}, "kernel size must be in 2..5"),
        ({"kernel_size": 6}, "kernel size must be in 2..5"),
        ({"num_classes": 1}, "at least 2 classes"),
    ],
)
def test_invalid_config_is_a_user_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(FerEdgeError, match=message):
        ModelConfig(**kwargs)


def test_config_round_trips_and_ignores_unknown_keys() -> None:
    cfg = ModelConfig(num_classes=8, depth=4, kernel_size=3)
    assert ModelConfig.from_dict({**cfg.to_dict(), "from_a_newer_version": 1}) == cfg


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    config = ModelConfig(base_filters=8, fc_width=32)
    model = build_model(config).eval()
    ema = build_model(config).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(
        path,
        {
            "model_config": config.to_dict(),
            "arch": config.arch,
            "dataset": "fer2013",
            "labels": list(FER2013_LABELS),
            "state_dict": model.state_dict(),
            "ema_state_dict": ema.state_dict(),
            "epoch": 3,
            "metrics": {"PrivateTest": 12.5},
        },
    )
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == "fer-edge-checkpoint" and ckpt["epoch"] == 3
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 1, 48, 48), dtype=np.uint8))
    with torch.no_grad():
        torch.testing.assert_close(model_from_checkpoint(ckpt, use_ema=False)(x), model(x))
        torch.testing.assert_close(model_from_checkpoint(ckpt)(x), ema(x))  # averaged weights preferred
    assert not model_from_checkpoint(ckpt).training
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_load_checkpoint_rejects_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(FerEdgeError, match="file not found"):
        load_checkpoint(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(FerEdgeError, match="not a readable PyTorch checkpoint") as exc:
        load_checkpoint(garbage)
    assert "garbage.pt" in str(exc.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(FerEdgeError, match="not a fer-edge checkpoint"):
        load_checkpoint(foreign)
