"""Shared fixtures: small generated datasets, and real slices when ../shared/data is present."""

from __future__ import annotations

import gzip
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

from fer_edge.model.labels import FER2013_LABELS, FERPLUS_LABELS

# A real PostgreSQL server for the fleet tests (started only by the tests that use it).
pytest_plugins = ["pg_fixture"]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))  # scenes.py: synthetic camera scenes shared with the scripts
SHARED_DATA = Path(os.environ.get("FER_EDGE_SHARED_DATA", REPO.parent / "shared" / "data"))

# train, export and quantize refuse Python < 3.10 before doing anything (test_device_side.py checks
# that refusal) and need torch; tests of what they do past that point run on the host side only.
NOT_HOST_SIDE = sys.version_info < (3, 10) or importlib.util.find_spec("torch") is None
HOST_SIDE_REASON = "train/export/quantize run on the host side (Python >= 3.10 with torch)"
host_side = pytest.mark.skipif(NOT_HOST_SIDE, reason=HOST_SIDE_REASON)


def skip_host_command_off_host(command: str) -> None:
    """For tests parametrised over every command: the host-only ones skip on a device-side Python."""
    if command in ("train", "export", "quantize") and NOT_HOST_SIDE:
        pytest.skip(HOST_SIDE_REASON)


def invoke_cli(*args: Any) -> Any:
    """``fer-edge ARGS`` in-process (CliRunner); a host-only command skips on a device-side Python."""
    from typer.testing import CliRunner

    from fer_edge.cli import app

    skip_host_command_off_host(str(args[0]))
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result: Any) -> str:
    """The command failed as a user error should: exit 2, one line ``error: ...``, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the parsed-data cache of the tests out of the user's home."""
    os.environ["FER_EDGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("fer-edge-cache"))


def synthetic_faces(n: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake faces: each class is a different blob position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=n)
    yy, xx = np.mgrid[0:48, 0:48]
    images = np.empty((n, 48, 48), dtype=np.uint8)
    for i, c in enumerate(labels):
        angle = 2 * np.pi * c / num_classes
        cy, cx = 24 + 12 * np.sin(angle), 24 + 12 * np.cos(angle)
        blob = 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)
        images[i] = np.clip(blob + rng.normal(40, 15, size=(48, 48)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def write_fer_csv(path: Path, images: np.ndarray, labels: np.ndarray, splits: list[str]) -> Path:
    lines = ["emotion,pixels,Usage"]
    assert len(images) == len(labels) == len(splits)
    for img, lab, split in zip(images, labels, splits):
        lines.append(f"{int(lab)},{' '.join(map(str, img.reshape(-1).tolist()))},{split}")
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture
def make_fer_csv(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_fer_csv(n_train=200, n_public=50, n_private=50, name="fer.csv")``."""

    def make(
        n_train: int = 200, n_public: int = 50, n_private: int = 50, name: str = "fer2013.csv", seed: int = 0
    ) -> Path:
        n = n_train + n_public + n_private
        images, labels = synthetic_faces(n, len(FER2013_LABELS), seed=seed)
        splits = ["Training"] * n_train + ["PublicTest"] * n_public + ["PrivateTest"] * n_private
        return write_fer_csv(tmp_path / name, images, labels, splits)

    return make


@pytest.fixture
def tiny_fer_csv(make_fer_csv: Callable[..., Path]) -> Path:
    return make_fer_csv()


def write_votes_csv(path: Path, votes: np.ndarray, splits: list[str]) -> Path:
    assert len(votes) == len(splits)
    header = "Usage,Image name," + ",".join([*FERPLUS_LABELS, "unknown", "NF"])
    lines = [header] + [
        f"{s},fer{i:07d}.png," + ",".join(map(str, v.tolist()))
        for i, (v, s) in enumerate(zip(votes, splits))
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The reference data folder; tests that need it skip when it is absent."""
    if not (SHARED_DATA / "fer2013.csv.gz").exists():
        pytest.skip(f"reference data not present at {SHARED_DATA} (set FER_EDGE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_slice_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 rows of each split of the real FER2013, written to a temp file (never committed)."""
    src = SHARED_DATA / "fer2013.csv.gz"
    if not src.exists():
        pytest.skip(f"reference data not present at {SHARED_DATA} (set FER_EDGE_SHARED_DATA)")
    per_split: dict[str, list[str]] = {"Training": [], "PublicTest": [], "PrivateTest": []}
    with gzip.open(src, "rt") as f:
        header = next(f)
        for line in f:
            split = line.rstrip("\n").rsplit(",", 1)[1]
            if len(per_split[split]) < 300:
                per_split[split].append(line)
            if all(len(v) >= 300 for v in per_split.values()):
                break
    out = tmp_path_factory.mktemp("real") / "fer2013_slice.csv"
    out.write_text(header + "".join(line for rows in per_split.values() for line in rows))
    return out


def invoke_apart(app: Any, args: List[Any]) -> Any:
    """CliRunner.invoke with stdout and stderr kept apart, on Click 8.1 (Python 3.8) as on 8.2+."""
    from typer.testing import CliRunner

    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # Click 8.2 dropped the option: the streams are always apart
        runner = CliRunner()
    return runner.invoke(app, [str(a) for a in args])
