"""scripts/pack_data.py: the lossless pack that carries FER2013 to a lent GPU, and its checks."""

from __future__ import annotations

import importlib.util
import io
import lzma
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import REPO, synthetic_faces, write_fer_csv

from fer_edge.core.errors import FerEdgeError


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pack_data", REPO / "scripts" / "pack_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pack_data = load_script()


def make_csv(path: Path) -> Path:
    images, labels = synthetic_faces(30, 7, seed=2)
    images[0] = 0  # flat and extreme images exercise the predictor's edges
    images[1] = 255
    images[2] = np.random.default_rng(0).integers(0, 256, size=(48, 48))
    return write_fer_csv(path, images, labels, ["Training"] * 20 + ["PublicTest"] * 5 + ["PrivateTest"] * 5)


@pytest.mark.parametrize("name", ["faces.csv", "faces.csv.gz"])
def test_pack_unpack_gives_back_the_same_text(tmp_path: Path, name: str) -> None:
    src = make_csv(tmp_path / name)
    assert pack_data.main(["pack", str(src), str(tmp_path / "p.pack"), "--preset", "0"]) == 0
    assert pack_data.main(["unpack", str(tmp_path / "p.pack"), str(tmp_path / "back.csv")]) == 0
    original = src.read_bytes()
    if name.endswith(".gz"):
        import gzip

        original = gzip.decompress(original)
    assert (tmp_path / "back.csv").read_bytes() == original


def test_predictor_round_trip_on_random_images() -> None:
    images = np.random.default_rng(1).integers(0, 256, size=(7, 48, 48)).astype(np.uint8)
    res = pack_data.residuals(images)
    assert res.dtype == np.uint8
    np.testing.assert_array_equal(pack_data.reconstruct(res), images)


def test_damaged_pack_is_refused(tmp_path: Path) -> None:
    src = make_csv(tmp_path / "faces.csv")
    pack_data.pack(src, tmp_path / "p.pack", preset=0)
    with np.load(io.BytesIO(lzma.decompress((tmp_path / "p.pack").read_bytes()))) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["residuals"][3, 10, 10] ^= 1
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (tmp_path / "bad.pack").write_bytes(lzma.compress(buf.getvalue(), preset=0))
    with pytest.raises(FerEdgeError, match="differs from the original"):
        pack_data.unpack(tmp_path / "bad.pack", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    (tmp_path / "junk.pack").write_bytes(b"junk")
    assert pack_data.main(["unpack", str(tmp_path / "junk.pack"), str(tmp_path / "out.csv")]) == 2


def test_non_canonical_csv_is_refused(tmp_path: Path) -> None:
    src = make_csv(tmp_path / "faces.csv")
    src.write_text(src.read_text().replace(",Training\n", ",Training\n\n", 1))
    with pytest.raises(FerEdgeError, match="canonical"):
        pack_data.pack(src, tmp_path / "p.pack", preset=0)
