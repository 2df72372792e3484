"""Reader for the Kaggle ``fer2013.csv`` (and ``.csv.gz``): ``emotion,pixels,Usage``."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.paths import require_file
from fer_edge.data.core import IMAGE_SIZE
from fer_edge.model.labels import FER2013_LABELS, SPLITS

PIXELS = IMAGE_SIZE * IMAGE_SIZE
HEADER = ("emotion", "pixels", "usage")
UTF8_BOM = b"\xef\xbb\xbf"


def read_text(path: Path) -> str:
    require_file(path, "CSV file")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        # Excel's "CSV UTF-8" starts the file with a byte-order mark
        if raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM) :]
        # UTF-8 (of which ASCII is a part): a stray non-ASCII character is then reported with its line
        return raw.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FerEdgeError(f"cannot read: {exc}", path=path) from None
    except UnicodeDecodeError:
        raise FerEdgeError("not a text CSV file (binary content)", path=path) from None


def parse_fer2013_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse to ``images uint8 [N,48,48]``, ``labels int64 [N]``, ``splits str [N]``.

    Errors name the file and the 1-based line, as an editor shows it.
    """
    lines = read_text(path).splitlines()
    if not lines:
        raise FerEdgeError("empty file", path=path)
    header = tuple(_unquote(h).lower() for h in lines[0].split(","))
    if header != HEADER:
        raise FerEdgeError(
            f"wrong header {lines[0][:60]!r}; expected 'emotion,pixels,Usage' (Kaggle fer2013.csv)", path=path
        )
    body = lines[1:]
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise FerEdgeError("no image rows after the header", path=path)

    labels = np.empty(len(body), dtype=np.int64)
    splits = np.empty(len(body), dtype=object)
    pixel_fields: list[str] = []
    for i, line in enumerate(body):
        first = line.find(",")
        last = line.rfind(",")
        if first < 0 or first == last:
            raise FerEdgeError("expected 3 fields: emotion,pixels,Usage", path=path, line=i + 2)
        code, usage = _unquote(line[:first]), _unquote(line[last + 1 :])
        if not _is_uint(code) or int(code) >= len(FER2013_LABELS):
            raise FerEdgeError(f"label {code!r} out of range (0..{len(FER2013_LABELS) - 1})", path=path, line=i + 2)
        if usage not in SPLITS:
            raise FerEdgeError(f"unknown Usage {usage!r}; expected one of {', '.join(SPLITS)}", path=path, line=i + 2)
        labels[i] = int(code)
        splits[i] = usage
        pixel_fields.append(_unquote(line[first + 1 : last]))

    try:
        with warnings.catch_warnings():
            # A non-numeric token ends the fast parse: NumPy 1.x warns (DeprecationWarning) and
            # returns what it read, NumPy 2 raises ValueError. Both go to the slow path.
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(" ".join(pixel_fields), dtype=np.int32, sep=" ")
    except (ValueError, DeprecationWarning):
        values = np.zeros(0, dtype=np.int32)
    if values.size != len(body) * PIXELS or values.min() < 0 or values.max() > 255:
        _raise_first_bad_row(path, pixel_fields)
    images = values.astype(np.uint8).reshape(len(body), IMAGE_SIZE, IMAGE_SIZE)
    return images, labels, splits.astype(str)


def _raise_first_bad_row(path: Path, pixel_fields: list[str]) -> None:
    """Slow path, only on error: find the row that broke the fast parse."""
    for i, field in enumerate(pixel_fields):
        parts = field.split()
        if len(parts) != PIXELS:
            raise FerEdgeError(f"pixel row has {len(parts)} values, expected {PIXELS}", path=path, line=i + 2)
        for p in parts:
            if not _is_uint(p) or int(p) > 255:
                raise FerEdgeError(f"pixel value {p!r} is not an integer in 0..255", path=path, line=i + 2)
    raise FerEdgeError("malformed pixel data", path=path)


def _unquote(field: str) -> str:
    """A field as a CSV writer that quotes every field writes it: ``"0"`` -> ``0``."""
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] == '"':
        field = field[1:-1].strip()
    return field


def _is_uint(text: str) -> bool:
    # str.isdigit() also accepts digits that int() refuses (superscripts)
    return text.isascii() and text.isdigit()
