"""Image folders as a copy from another machine leaves them: hidden files, decompression bombs,
named pipes and devices named like images, file names that are not UTF-8."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.data import load_dataset


def _faces(root: Path, n: int = 3) -> Path:
    folder = root / "train" / "happy"
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((48, 48), 40 * i, np.uint8)).save(folder / f"im{i}.png")
    return folder


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """Reading a named pipe would block forever: fail instead."""

    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("the reader blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_hidden_and_apple_double_files_are_skipped(tmp_path: Path) -> None:
    folder = _faces(tmp_path / "faces")
    (folder / "._im0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / ".im9.png.swp").write_bytes(b"editor swap")
    hidden = folder.parent / ".thumbnails"
    hidden.mkdir()
    (hidden / "t.png").write_bytes(b"not read either")
    assert len(load_dataset(tmp_path / "faces", cache=False)) == 3


@pytest.mark.parametrize(("side", "said"), [(9000, "9000x9000 pixels is not a face image"),
                                            (20_000, "could be decompression bomb")])
def test_a_decompression_bomb_is_refused_unread(tmp_path: Path, side: int, said: str) -> None:
    """Below Pillow's own limit fer-edge's (a face is 48x48) refuses it; above it Pillow's error is one line."""
    folder = _faces(tmp_path / "faces")
    Image.new("1", (side, side)).save(folder / "bomb.png")  # tens of Mpixels, a few kB on disk
    assert (folder / "bomb.png").stat().st_size < 1_000_000
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "faces"), "--device", "cpu"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {folder / 'bomb.png'}: ") and said in lines[0], lines


@pytest.mark.parametrize("kind", ["named pipe", "device"])
def test_a_pipe_or_device_named_like_an_image_is_one_line(tmp_path: Path, kind: str) -> None:
    folder = _faces(tmp_path / "faces")
    odd = folder / "odd.png"
    if kind == "named pipe":
        os.mkfifo(odd)
    else:
        os.symlink("/dev/zero", odd)  # endless
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "faces"), "--device", "cpu"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines == [f"error: {odd}: is a {kind}, not an image file"], lines


def test_non_utf8_file_names_are_read(tmp_path: Path) -> None:
    folder = _faces(tmp_path / "faces")
    name = os.fsencode(folder) + b"/caf\xe9.png"  # Latin-1, as an old camera or Windows share writes it
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(os.fsdecode(name))
    data = load_dataset(tmp_path / "faces")  # through the cache, whose key hashes the names
    assert len(data) == 4
    assert len(load_dataset(tmp_path / "faces")) == 4
