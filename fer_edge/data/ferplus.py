"""FERPlus (Barsoum et al. 2016): annotator votes in ``fer2013new.csv``, joined by line position.

Line i of the votes file belongs to row i of fer2013.csv. ``Image name`` is blank for not-face
rows and repeats for four images, so it is never used as a key. It still checks the join: the
names (``fer0000000.png``, ...) count up in row order, so votes whose rows were shuffled within
a split (which the Usage check cannot see) are refused instead of silently mislabelling. A blank
name proves nothing, so it is accepted only where the row's votes say why it is blank (all
not-a-face); a file whose names were blanked cannot vouch for its order and is refused.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.data.fer2013_csv import read_text
from fer_edge.model.labels import FERPLUS_LABELS, SPLITS

VOTE_COLUMNS = (*FERPLUS_LABELS, "unknown", "NF")
NUM_EMOTIONS = len(FERPLUS_LABELS)
NOT_A_FACE = VOTE_COLUMNS.index("NF")
# FERPlus has 10 votes a row; far more is a damaged file (and past 2**63 not even an int64).
MAX_VOTES = 1_000_000


def read_votes(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return ``votes int [N, 10]`` (8 emotions, unknown, not-a-face), ``usage str [N]`` and the
    ``Image name`` of each row."""
    rows = list(csv.reader(io.StringIO(read_text(path))))
    while rows and not rows[-1]:
        rows.pop()
    if not rows:
        raise FerEdgeError("empty votes file", path=path)
    header = [h.strip() for h in rows[0]]
    if header[:1] != ["Usage"] or tuple(header[2:]) != VOTE_COLUMNS:
        raise FerEdgeError(
            f"wrong header; expected 'Usage,Image name,{','.join(VOTE_COLUMNS)}' (FERPlus fer2013new.csv)",
            path=path,
        )
    votes = np.zeros((len(rows) - 1, len(VOTE_COLUMNS)), dtype=np.int64)
    usage = np.empty(len(rows) - 1, dtype=object)
    names: list[str] = []
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise FerEdgeError(f"expected {len(header)} fields, got {len(row)}", path=path, line=i + 2)
        if row[0] not in SPLITS:
            raise FerEdgeError(f"unknown Usage {row[0]!r}", path=path, line=i + 2)
        try:
            counts = [int(v) for v in row[2:]]
        except ValueError:
            raise FerEdgeError("vote counts must be integers", path=path, line=i + 2) from None
        if any(c < 0 for c in counts):
            raise FerEdgeError("negative vote count", path=path, line=i + 2)
        if any(c > MAX_VOTES for c in counts):
            raise FerEdgeError(f"vote count {max(counts)} is above {MAX_VOTES:,} (FERPlus has 10 annotators)",
                               path=path, line=i + 2)
        votes[i] = counts
        usage[i] = row[0]
        names.append(row[1].strip())
    return votes, usage.astype(str), names


IMAGE_NAME = re.compile(r"fer(\d+)\.png")
# The real file has four out-of-order names (repeated images); a shuffle makes about half of
# the rows out of order.
MAX_OUT_OF_ORDER = 4


def check_row_order(names: list[str], usage: np.ndarray, path: Path, votes: np.ndarray | None = None) -> None:
    """Refuse votes whose rows are out of order within a split, judged by ``Image name``.

    With ``votes``, a name is only allowed blank where the row says why: all its votes are not-a-face
    (the real file's 173 blanks). Blank names on face rows cannot be checked; too many of them and
    the order cannot be vouched for, so the file is refused rather than joined on trust.
    """
    last: dict[str, int] = {}
    out_of_order: dict[str, list[int]] = {}
    named: dict[str, int] = {}
    unchecked: dict[str, list[int]] = {}
    for i, (name, split) in enumerate(zip(names, usage)):
        match = IMAGE_NAME.fullmatch(name)
        if not match:
            # blank (not-a-face rows) or a naming this check does not know
            if votes is not None and not _not_a_face_only(votes[i]):
                unchecked.setdefault(split, []).append(i)
            continue
        number = int(match.group(1))
        named[split] = named.get(split, 0) + 1
        if split in last and number <= last[split]:
            out_of_order.setdefault(split, []).append(i)
        last[split] = number
    for split, rows in unchecked.items():
        total = int(np.count_nonzero(usage == split))
        if len(rows) > MAX_OUT_OF_ORDER + total // 1000:
            raise FerEdgeError(
                f"{len(rows)} of the {total} {split} rows have no 'Image name' although their votes say it is "
                f"a face (first: line {rows[0] + 2}); too few names remain to check that the votes are in "
                "fer2013.csv's row order, which is how they are joined (use the unmodified fer2013new.csv)",
                path=path,
                line=rows[0] + 2,
            )
    for split, rows in out_of_order.items():
        if len(rows) > MAX_OUT_OF_ORDER + named[split] // 1000:
            raise FerEdgeError(
                f"{len(rows)} of the {named[split]} {split} rows are out of order by 'Image name' "
                f"(first: {names[rows[0]]!r}); the votes are joined to fer2013.csv by row position, so the "
                "rows must keep the original order (use the unmodified fer2013new.csv)",
                path=path,
                line=rows[0] + 2,
            )


def _not_a_face_only(row: np.ndarray) -> bool:
    return bool(row[NOT_A_FACE] > 0 and row.sum() == row[NOT_A_FACE])


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """Barsoum et al.'s majority mode: label per image, or -1 where the image is dropped.

    Votes of 1 are outliers and removed; an image is kept when its top class holds more than
    half of the remaining votes and that class is an emotion (not unknown, not not-a-face).
    """
    v = np.where(votes <= 1, 0, votes).astype(np.float64)
    total = v.sum(axis=1)
    top = v.argmax(axis=1)
    top_votes = v.max(axis=1)
    keep = (top_votes > 0.5 * total) & (top < NUM_EMOTIONS)
    return np.where(keep, top, -1).astype(np.int64)


def soft_labels(votes: np.ndarray) -> np.ndarray:
    """Vote distribution over the 8 emotions after removing single votes, rows sum to 1.

    Used as training targets for the images the majority mode keeps (Barsoum et al. found
    training on the distribution better than on the majority label).
    """
    v = np.where(votes <= 1, 0, votes)[:, :NUM_EMOTIONS].astype(np.float32)
    total = v.sum(axis=1, keepdims=True)
    return np.divide(v, total, out=np.zeros_like(v), where=total > 0)
