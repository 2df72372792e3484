"""Mood logs with known windows, and reading them back from the central database, for the fleet tests."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.windows import WindowSummary, polarity
from fer_edge.moodlog.writer import MoodLog

REPO = Path(__file__).resolve().parents[1]
T0 = 1_790_000_000.0  # 2026-09-21, a fixed clock: the same log gives the same rows


def window(labels: tuple[str, ...], start: float, rng: np.random.Generator, seconds: float = 60.0) -> WindowSummary:
    counts = {label: int(n) for label, n in zip(labels, rng.integers(0, 4, size=len(labels)))}
    by = {"positive": 0, "neutral": 0, "negative": 0}
    for label, n in counts.items():
        by[polarity(label)] += n
    return WindowSummary(start, start + seconds, 600, counts, by["positive"], by["neutral"], by["negative"], False)


def make_log(
    path: Path,
    windows: int,
    *,
    labels: tuple[str, ...] = FER2013_LABELS,
    runs: int = 1,
    start: float = T0,
    seed: int = 0,
) -> Path:
    """``runs`` runs of ``windows`` one-minute windows each, consecutive in time."""
    rng = np.random.default_rng(seed)
    t = start
    for _ in range(runs):
        log = MoodLog(path, labels, dataset="fer2013", window_s=60.0, started_ts=t)
        for _ in range(windows):
            log.write_window(window(labels, t, rng), [])
            t += 60.0
        log.close(t)
    return path


def local_windows(path: Path) -> dict[tuple[int, int], tuple[Any, ...]]:
    """(run, window) -> (faces, positive, negative, satisfaction) from the SQLite log."""
    db = sqlite3.connect(path)
    try:
        return {
            (r[0], r[1]): tuple(r[2:])
            for r in db.execute("SELECT run_id, id, faces, positive, negative, satisfaction FROM windows")
        }
    finally:
        db.close()


def device_id(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT device_id FROM fleet_device").fetchone()[0])
    finally:
        db.close()


def central_windows(url: str, device: str | None = None) -> list[tuple[Any, ...]]:
    """Every (device, run, window, faces, positive, negative, satisfaction) row on the server."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id::text, run_id, window_id, faces, valence_positive, valence_negative, satisfaction "
            "FROM fer_edge.windows" + (" WHERE device_id = %s" if device else ""),
            (device,) if device else None,
        ).fetchall()
    return [tuple(r) for r in rows]


def assert_exactly_once(url: str, log: Path) -> None:
    """Every window of the log is on the server once, with its numbers; nothing else of this device."""
    dev = device_id(log)
    central = central_windows(url, dev)
    keys = [(r[1], r[2]) for r in central]
    assert len(keys) == len(set(keys)), "a window stored twice"
    local = local_windows(log)
    assert sorted(keys) == sorted(local), f"{len(local)} local windows, {len(keys)} on the server"
    for r in central:
        assert tuple(r[3:]) == local[(r[1], r[2])]


def fer_edge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fer_edge", *args]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def popen(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        fer_edge_cmd(*args), cwd=REPO, env=subprocess_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def acked(path: Path) -> int:
    db = sqlite3.connect(path, timeout=10)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        if "fleet_acked" not in tables:
            return 0
        row = db.execute("SELECT max(window_id) FROM fleet_acked").fetchone()
        return int(row[0] or 0)
    finally:
        db.close()
