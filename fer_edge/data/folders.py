"""Reader for the image-folder layout of the common FER2013 download.

``train/<class>/*.jpg|png`` and ``test/<class>/...``, with class folders named after the
FER2013 classes (``angry``, ``disgust``, ``fear``, ``happy``, ``sad``, ``surprise``, ``neutral``).
That download merges PublicTest and PrivateTest into ``test/``; it is read as PrivateTest. A
``val/`` (or ``validation/``, ``PublicTest/``) folder, where present, is read as PublicTest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.data.core import IMAGE_SIZE
from fer_edge.model.labels import FER2013_LABELS

SPLIT_FOLDERS = {
    "train": "Training",
    "training": "Training",
    "val": "PublicTest",
    "valid": "PublicTest",
    "validation": "PublicTest",
    "publictest": "PublicTest",
    "test": "PrivateTest",
    "privatetest": "PrivateTest",
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
# A face is 48x48; a file far beyond these is not a face photo but a decompression bomb or a mistake.
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 8192 * 8192


def _visible(entry: Path) -> bool:
    """Not hidden: macOS's ``._name`` resource forks, ``.DS_Store``, editors' ``.name.swp``."""
    return not entry.name.startswith(".")


def _image_files(class_dir: Path) -> list[Path]:
    """The images of a class folder: visible, with an image suffix, and regular files. A device, a
    named pipe or a socket named like an image (reading it would never end, or block) is refused."""
    from fer_edge.core.paths import require_file

    files = []
    for file in sorted(class_dir.iterdir()):
        if not _visible(file) or file.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        require_file(file, "image file", article="an")
        if file.stat().st_size > MAX_IMAGE_BYTES:
            raise FerEdgeError(f"{file.stat().st_size / 1e6:.0f} MB is not a face image (at most "
                               f"{MAX_IMAGE_BYTES >> 20} MB)", path=file)
        files.append(file)
    return files


def read_image_folders(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    # Image.Resampling since Pillow 9.1; older Pillow (JetPack 5's) has the constant on Image
    bilinear = getattr(Image, "Resampling", Image).BILINEAR
    if not root.is_dir():
        raise FerEdgeError("not a directory", path=root)
    images: list[np.ndarray] = []
    labels: list[int] = []
    splits: list[str] = []
    split_dirs = sorted(d for d in root.iterdir() if _visible(d) and d.is_dir() and d.name.lower() in SPLIT_FOLDERS)
    if not split_dirs:
        raise FerEdgeError("no train/ or test/ folder; expected the layout train/<class>/*.jpg", path=root)
    for split_dir in split_dirs:
        split = SPLIT_FOLDERS[split_dir.name.lower()]
        for class_dir in sorted(d for d in split_dir.iterdir() if _visible(d) and d.is_dir()):
            name = class_dir.name.lower()
            if name not in FER2013_LABELS:
                raise FerEdgeError(
                    f"unknown class folder {class_dir.name!r}; expected one of {', '.join(FER2013_LABELS)}",
                    path=class_dir,
                )
            for file in _image_files(class_dir):
                try:
                    with Image.open(file) as im:
                        # Pillow reads only the header here: a bomb is refused before it is decoded.
                        if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:
                            raise FerEdgeError(
                                f"{im.size[0]}x{im.size[1]} pixels is not a face image (a decompression "
                                "bomb?); refused", path=file)
                        gray = to_gray8(im, file)
                        if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
                            gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), bilinear)
                        images.append(np.asarray(gray, dtype=np.uint8))
                except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise FerEdgeError(f"cannot read image: {reason}", path=file) from None
                labels.append(FER2013_LABELS.index(name))
                splits.append(split)
    if not images:
        raise FerEdgeError("no images found under the split folders", path=root)
    return np.stack(images), np.asarray(labels, dtype=np.int64), np.asarray(splits, dtype=str)


# Integer modes Pillow uses for 16-bit grayscale (PNG, TIFF): "I;16*" or, in older Pillow, "I".
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def to_gray8(im: Any, path: Path) -> Any:
    """An 8-bit grayscale image. 16-bit grayscale is scaled (0..65535 -> 0..255): Pillow's own
    ``convert("L")`` clips it, turning every face white."""
    from PIL import Image

    if im.mode in SIXTEEN_BIT_MODES:
        wide = np.asarray(im, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), mode="L")
    if im.mode == "F":
        raise FerEdgeError("floating-point image; save the faces as 8- or 16-bit PNG or JPEG", path=path)
    return im.convert("L")


def folder_fingerprint(root: Path) -> str:
    """A cheap content key for a folder tree: names, sizes and modification times."""
    import hashlib

    h = hashlib.sha256()
    for file in sorted(root.rglob("*")):
        if file.is_file():
            st = file.stat()
            # os.fsencode: a file name that is not UTF-8 (surrogate-escaped) still hashes
            h.update(os.fsencode(file.relative_to(root)) + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
