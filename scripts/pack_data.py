"""Pack fer2013.csv(.gz) small enough to travel to a lent GPU machine, and unpack it there byte for byte.

    python scripts/pack_data.py pack fer2013.csv.gz .devdata/fer2013.pack     # here, once (minutes)
    python scripts/pack_data.py unpack .devdata/fer2013.pack /tmp/fer2013.csv  # there (seconds)

The Kaggle file is 94 MB gzipped; the device tool carries at most 64 MiB with the working tree.
Each pixel is stored as its residual from the median edge predictor of JPEG-LS (Weinberger et al.
2000; left, up and up-left neighbours), compressed with xz: about 56 MB for the 35,887 faces,
lossless. Unpacking rebuilds the CSV text and checks it against the SHA-256 of the original, so
the unpacked file is the original file's text, not merely similar data.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import sys
from pathlib import Path

import numpy as np

from fer_edge.core.atomic import write_bytes_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.data.fer2013_csv import parse_fer2013_csv, read_text
from fer_edge.model.labels import SPLITS

MAGIC = "fer-edge-pack"


def med_prediction(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    hi, lo = np.maximum(left, up), np.minimum(left, up)
    return np.where(up_left >= hi, lo, np.where(up_left <= lo, hi, left + up - up_left))


def residuals(images: np.ndarray) -> np.ndarray:
    im = images.astype(np.int16)
    left, up, up_left = np.zeros_like(im), np.zeros_like(im), np.zeros_like(im)
    left[:, :, 1:] = im[:, :, :-1]
    up[:, 1:, :] = im[:, :-1, :]
    up_left[:, 1:, 1:] = im[:, :-1, :-1]
    return ((im - med_prediction(left, up, up_left)) % 256).astype(np.uint8)


def reconstruct(res: np.ndarray) -> np.ndarray:
    """Invert :func:`residuals`, pixel by pixel in raster order (each image in parallel)."""
    n, h, w = res.shape
    im = np.zeros((n, h + 1, w + 1), dtype=np.int16)  # a zero border as the predictor's outside
    for y in range(1, h + 1):
        for x in range(1, w + 1):
            pred = med_prediction(im[:, y, x - 1], im[:, y - 1, x], im[:, y - 1, x - 1])
            im[:, y, x] = (pred + res[:, y - 1, x - 1]) % 256
    return im[:, 1:, 1:].astype(np.uint8)


def csv_text(images: np.ndarray, labels: np.ndarray, usage: list[str], header: str, newline: str) -> str:
    lines = [header]
    lines += [f"{lab},{' '.join(map(str, img.reshape(-1).tolist()))},{u}" for img, lab, u in zip(images, labels, usage)]
    return newline.join(lines) + newline


def pack(src: Path, dst: Path, preset: int = 6) -> dict:
    text = read_text(src)
    images, labels, splits = parse_fer2013_csv(src)
    header = text[: text.index("\n")].rstrip("\r")
    newline = "\r\n" if text[len(header)] == "\r" else "\n"
    usage = [SPLITS.index(s) for s in splits]
    meta = {
        "format": MAGIC,
        "version": 1,
        "text_sha256": hashlib.sha256(text.encode("ascii")).hexdigest(),
        "header": header,
        "newline": newline,
        "images": len(images),
    }
    if csv_text(images, labels, list(splits), header, newline) != text:
        raise FerEdgeError(
            "is not in the canonical Kaggle layout (spacing, blank lines); cannot pack losslessly", path=src
        )
    buf = io.BytesIO()
    np.savez(
        buf,
        meta=np.array(json.dumps(meta)),
        residuals=residuals(images),
        labels=labels.astype(np.uint8),
        usage=np.asarray(usage, dtype=np.uint8),
    )
    write_bytes_atomic(dst, lzma.compress(buf.getvalue(), preset=preset))
    return meta


def unpack(src: Path, dst: Path) -> dict:
    if dst.resolve() == src.resolve():
        raise FerEdgeError("the output would overwrite the pack; choose another path", path=dst)
    try:
        with np.load(io.BytesIO(lzma.decompress(src.read_bytes())), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            res, labels, usage = z["residuals"], z["labels"], z["usage"]
    except (OSError, lzma.LZMAError, ValueError, KeyError) as exc:
        raise FerEdgeError(f"not a fer-edge data pack ({type(exc).__name__})", path=src) from None
    if meta.get("format") != MAGIC:
        raise FerEdgeError("not a fer-edge data pack", path=src)
    text = csv_text(reconstruct(res), labels, [SPLITS[u] for u in usage], meta["header"], meta["newline"])
    if hashlib.sha256(text.encode("ascii")).hexdigest() != meta["text_sha256"]:
        raise FerEdgeError("unpacked text differs from the original (damaged pack)", path=src)
    write_bytes_atomic(dst, text.encode("ascii"))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("pack", "unpack"))
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--preset", type=int, default=6, help="xz preset (pack only)")
    args = ap.parse_args(argv)
    try:
        meta = pack(args.src, args.dst, args.preset) if args.action == "pack" else unpack(args.src, args.dst)
    except FerEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.action}ed {meta['images']} images: {args.dst} ({args.dst.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
