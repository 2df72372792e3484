"""``fer-edge report`` on a mood log with known numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.camera.tracking import IouTracker
from fer_edge.cli import app
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.reader import load_windows, parse_when
from fer_edge.moodlog.summary import summarize
from fer_edge.moodlog.windows import summarize_window
from fer_edge.moodlog.writer import MoodLog

DAY1 = parse_when("2026-03-01T10:00:00")
DAY2 = parse_when("2026-03-02T10:00:00")


def add_window(log: MoodLog, start: float, emotions: list[str]) -> None:
    """A window in which one track per listed emotion was seen."""
    tracker = IouTracker(min_hits=1)
    boxes = np.array([[100 * i, 0, 50, 50] for i in range(len(emotions))], dtype=np.float64)
    probs = np.stack([np.eye(7)[FER2013_LABELS.index(e)] for e in emotions]) if emotions else np.zeros((0, 7))
    tracker.update(boxes, probs, start + 1)
    counted = tracker.close_window()
    log.write_window(summarize_window(FER2013_LABELS, counted, start, start + 60, frames=600), counted)


@pytest.fixture
def known_log(tmp_path: Path) -> Path:
    db = tmp_path / "mood.db"
    log = MoodLog(db, FER2013_LABELS, dataset="fer2013", window_s=60, started_ts=DAY1)
    add_window(log, DAY1, ["happy", "happy", "neutral", "sad"])  # +1/4
    add_window(log, DAY1 + 60, [])  # nobody: index undefined
    add_window(log, DAY2, ["angry", "surprise"])  # -1/2
    add_window(log, DAY2 + 60, ["happy"])  # +1
    log.close(DAY2 + 120)
    return db


def test_summary_numbers(known_log: Path) -> None:
    rows = load_windows(known_log)
    assert [r.satisfaction for r in rows] == [0.25, None, -0.5, 1.0]
    s = summarize(rows)
    assert s.windows == 4 and s.faces == 7
    assert s.counts == {
        "angry": 1,
        "disgust": 0,
        "fear": 0,
        "happy": 3,
        "sad": 1,
        "surprise": 1,
        "neutral": 1,
    }
    assert s.polarity == {"positive": 3, "neutral": 2, "negative": 2}
    assert s.satisfaction == pytest.approx(1 / 7)
    later = summarize(load_windows(known_log, since=parse_when("2026-03-02")))
    assert later.windows == 2 and later.faces == 3 and later.satisfaction == pytest.approx(0.0)


def test_report_command_table_csv_and_plot(known_log: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["report", str(known_log), "--csv", str(tmp_path / "mood.csv"), "--plot", str(tmp_path / "mood.png")],
    )
    assert result.exit_code == 0, result.output
    assert "satisfaction index: +0.143" in result.output
    assert "faces: 7" in result.output
    with (tmp_path / "mood.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 4
    assert (
        lines[0]["faces"] == "4" and lines[0]["happy"] == "2" and lines[0]["satisfaction_index"] == "0.2500"
    )
    assert lines[1]["satisfaction_index"] == "" and lines[1]["faces"] == "0"
    assert lines[2]["valence_negative"] == "1" and lines[2]["valence_neutral"] == "1"
    assert lines[0]["window_start"].startswith("2026-03-01T10:00:00")
    assert (tmp_path / "mood.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    since = CliRunner().invoke(app, ["report", str(known_log), "--since", "2026-03-02"])
    assert since.exit_code == 0 and "faces: 3" in since.output and "+0.000" in since.output


def test_report_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["report", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "mood log not found" in missing.output
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE x(a)").connection.commit()
    foreign = runner.invoke(app, ["report", str(other)])
    assert foreign.exit_code == 2 and "not a fer-edge mood log" in foreign.output
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 100)
    assert runner.invoke(app, ["report", str(text)]).exit_code == 2
    bad_date = runner.invoke(app, ["report", str(other), "--since", "yesterday"])
    assert bad_date.exit_code == 2 and "bad date" in bad_date.output


def test_report_reads_a_log_whose_name_has_uri_characters_and_shows_outages(tmp_path: Path) -> None:
    db = tmp_path / "store #1?x=%41.db"
    log = MoodLog(db, FER2013_LABELS, dataset="fer2013", window_s=60, started_ts=DAY1)
    add_window(log, DAY1, ["happy"])
    log.write_window(summarize_window(FER2013_LABELS, [], DAY1 + 60, DAY1 + 120, frames=0, outage_s=60.0), [])
    log.close(DAY1 + 120)
    result = CliRunner().invoke(app, ["report", str(db), "--csv", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert "windows: 2" in result.output and "faces: 1" in result.output
    with (tmp_path / "out.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert [(r["frames"], r["outage_s"]) for r in lines] == [("600", "0"), ("0", "60")]
    names = {p.name for p in tmp_path.iterdir()} - {"store #1?x=%41.db-wal", "store #1?x=%41.db-shm"}
    assert names == {"out.csv", "store #1?x=%41.db"}  # the log was opened by its own name
