"""What a mood-log window is: counts per emotion, valence, satisfaction index; no images, no embeddings.

Satisfaction index of a window = (positive - negative) / faces, in [-1, 1]; None with no faces.
A window is summarised from the face tracks counted in it; this module needs only what a track
carries (``TrackLike``), so the mood log does not depend on the camera.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Tuple

import numpy as np

# Valence of each class name of both datasets. Surprise is counted as neutral: its valence is
# ambiguous (a pleasant or an unpleasant surprise), so it neither raises nor lowers satisfaction.
POLARITY: dict[str, str] = {
    "happy": "positive",
    "happiness": "positive",
    "neutral": "neutral",
    "surprise": "neutral",
    "angry": "negative",
    "anger": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sad": "negative",
    "sadness": "negative",
    "contempt": "negative",
}
POLARITIES: tuple[str, ...] = ("positive", "neutral", "negative")


class TrackLike(Protocol):
    """A face track as the camera's tracker keeps it (``camera.tracking.Track``)."""

    id: int
    probs: np.ndarray
    first_seen: float
    last_seen: float
    hits: int
    window_sum: np.ndarray

    @property
    def emotion(self) -> int: ...


def polarity(label: str) -> str:
    return POLARITY.get(label.lower(), "neutral")


def satisfaction_index(positive: int, negative: int, faces: int) -> float | None:
    """(positive - negative) / faces in [-1, 1]; None when no face was seen."""
    return (positive - negative) / faces if faces else None


def iso(ts: float) -> str:
    """Local time with its UTC offset, e.g. 2026-01-01T10:00:00+01:00 (unambiguous for a CRM import)."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class WindowSummary:
    start_ts: float
    end_ts: float
    frames: int
    counts: dict[str, int]
    positive: int
    neutral: int
    negative: int
    partial: bool
    outage_s: float = 0.0  # seconds of the window without a camera (a live source that dropped)

    @property
    def faces(self) -> int:
        return sum(self.counts.values())

    @property
    def satisfaction(self) -> float | None:
        return satisfaction_index(self.positive, self.negative, self.faces)


def summarize_window(
    labels: Sequence[str],
    tracks: Sequence[TrackLike],
    start_ts: float,
    end_ts: float,
    frames: int,
    partial: bool = False,
    outage_s: float = 0.0,
) -> WindowSummary:
    """Each track counts once: for the emotion its smoothed distribution averaged over the window."""
    counts = dict.fromkeys(labels, 0)
    for track in tracks:
        counts[labels[int(np.argmax(track.window_sum))]] += 1
    by_polarity = dict.fromkeys(POLARITIES, 0)
    for label, n in counts.items():
        by_polarity[polarity(label)] += n
    return WindowSummary(
        start_ts,
        end_ts,
        frames,
        counts,
        by_polarity["positive"],
        by_polarity["neutral"],
        by_polarity["negative"],
        partial,
        round(max(0.0, min(outage_s, end_ts - start_ts)), 3),
    )


# (track id, first seen, last seen, frames, emotion, distribution as JSON): a track as it was when
# its window closed, so a window held in memory is written with the values it closed with.
TrackRow = Tuple[int, float, float, int, str, str]


def track_rows(labels: Sequence[str], tracks: Sequence[TrackLike]) -> list[TrackRow]:
    return [
        (
            t.id,
            t.first_seen,
            t.last_seen,
            t.hits,
            labels[t.emotion],
            json.dumps({k: round(float(p), 4) for k, p in zip(labels, t.probs)}),
        )
        for t in tracks
    ]
