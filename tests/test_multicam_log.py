"""One mood log for every camera: ``windows.camera`` in the SQLite log (a forward migration of a log
made by the version before it), ``report --by camera`` / ``--camera``, and the camera carried by
``sync`` into PostgreSQL (a forward migration of a database made by the version before it), where
``report URL --by store,camera`` sums per camera of each store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.reader import load_windows, parse_when
from fer_edge.moodlog.windows import summarize_window
from fer_edge.moodlog.writer import MoodLog

T0 = parse_when("2026-03-01T10:00:00")

# A mood log as the version before cameras made it (schema version 2), with one window of 3 faces.
LOG_V2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '2');
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, started_ts REAL NOT NULL, ended_at TEXT, ended_ts REAL,
    source TEXT, model TEXT, dataset TEXT, labels TEXT NOT NULL, detector TEXT, crop_rule TEXT,
    window_s REAL, fer_edge_version TEXT
);
CREATE TABLE windows (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),
    start TEXT NOT NULL, end TEXT NOT NULL, start_ts REAL NOT NULL, end_ts REAL NOT NULL,
    frames INTEGER NOT NULL, faces INTEGER NOT NULL,
    positive INTEGER NOT NULL, neutral INTEGER NOT NULL, negative INTEGER NOT NULL,
    satisfaction REAL, partial INTEGER NOT NULL DEFAULT 0, outage_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX windows_start ON windows(start_ts);
CREATE TABLE window_counts (
    window_id INTEGER NOT NULL REFERENCES windows(id), emotion TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (window_id, emotion)
);
CREATE TABLE tracks (
    run_id INTEGER NOT NULL REFERENCES runs(id), track_id INTEGER NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    first_seen_ts REAL NOT NULL, last_seen_ts REAL NOT NULL,
    frames INTEGER NOT NULL, emotion TEXT NOT NULL, distribution TEXT NOT NULL,
    PRIMARY KEY (run_id, track_id)
);
CREATE UNIQUE INDEX windows_run_start ON windows(run_id, start_ts);
INSERT INTO runs(id, started_at, started_ts, source, labels, window_s)
    VALUES (1, 'x', {t0}, 'old.mp4', '["angry","disgust","fear","happy","sad","surprise","neutral"]', 60);
INSERT INTO windows VALUES (1, 1, 'a', 'b', {t0}, {t1}, 600, 3, 2, 1, 0, 0.6667, 0, 0);
INSERT INTO window_counts VALUES (1, 'happy', 2), (1, 'neutral', 1);
"""


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def window(start: float, happy: int, sad: int) -> object:
    from fer_edge.camera.tracking import Track

    tracks = []
    for i, emotion in enumerate(["happy"] * happy + ["sad"] * sad):
        votes = np.zeros(len(FER2013_LABELS))
        votes[FER2013_LABELS.index(emotion)] = 1.0
        tracks.append(Track(i, np.zeros(4), votes, start, start, window_sum=votes))
    return summarize_window(FER2013_LABELS, tracks, start, start + 60, frames=600)


def old_log(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(LOG_V2.format(t0=T0 - 120, t1=T0 - 60))
    conn.close()
    return path


def two_cameras_into(path: Path) -> None:
    for camera, (happy, sad) in (("entrance", (3, 1)), ("checkout", (0, 2))):
        log = MoodLog(path, FER2013_LABELS, camera=camera, started_ts=T0)
        log.write_window(window(T0, happy, sad), [])  # type: ignore[arg-type]
        log.close()


def test_a_log_of_the_version_before_gains_the_camera_column(tmp_path: Path) -> None:
    db = old_log(tmp_path / "mood.db")
    assert [r.camera for r in load_windows(db)] == ["cam0"]  # read as it is, before any write
    two_cameras_into(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)
    assert conn.execute("SELECT id, camera FROM windows ORDER BY id").fetchall() == [
        (1, "cam0"), (2, "entrance"), (3, "checkout")]
    conn.close()
    rows = load_windows(db)
    assert [(r.camera, r.faces) for r in rows] == [("cam0", 3), ("entrance", 4), ("checkout", 2)]


def test_report_by_camera_and_for_one_camera(tmp_path: Path) -> None:
    db = old_log(tmp_path / "mood.db")
    two_cameras_into(db)
    code, out = cli("report", str(db), "--by", "camera")
    assert code == 0, out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["entrance"][1:5] == ["1", "4", "+0.500", "happy"]
    assert lines["checkout"][1:5] == ["1", "2", "-1.000", "sad"] and lines["cam0"][1:3] == ["1", "3"]
    assert "windows: 3   faces: 9" in out
    code, out = cli("report", str(db), "--camera", "checkout", "--csv", str(tmp_path / "c.csv"))
    assert code == 0 and "windows: 1   faces: 2" in out, out
    header, row = (tmp_path / "c.csv").read_text().splitlines()
    assert header.startswith("window_start,window_end,run_id,") and header.endswith(",camera")
    assert row.endswith(",checkout")
    code, out = cli("report", str(db), "--by", "hour")
    assert code != 0 and "--by for a mood log is camera" in out


def test_a_single_camera_run_writes_cam0(tmp_path: Path) -> None:
    from scenes import write_video
    from test_camera_helpers import tiny_fer_model

    video = write_video(tmp_path / "v.avi", [np.full((120, 160, 3), 90, np.uint8)] * 5, fps=10.0)
    code, out = cli("run", "--source", str(video), "--model", str(tiny_fer_model(tmp_path / "t.onnx")),
                    "--log", str(tmp_path / "m.db"), "--window", "1")
    assert code == 0, out
    conn = sqlite3.connect(tmp_path / "m.db")
    assert conn.execute("SELECT camera, frames FROM windows").fetchall() == [("cam0", 5)]
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


# --- PostgreSQL: the camera carried by sync, a database of the version before migrated ---------------


def database_of_the_version_before(pg: object, db: str) -> None:
    """The schema as the version before cameras created it (migration 1 only), with one synced window."""
    import psycopg

    from fer_edge.fleet.schema import MIGRATIONS

    version, statements = MIGRATIONS[0]
    assert version == 1
    with psycopg.connect(pg.url(db)) as conn:  # type: ignore[attr-defined]
        for sql in statements:
            conn.execute(sql)
        conn.execute("INSERT INTO fer_edge.schema_version VALUES (1, 'fer-edge', '0.1.0', now())")
        conn.execute("INSERT INTO fer_edge.installation (id) VALUES (gen_random_uuid())")
        conn.execute("INSERT INTO fer_edge.devices VALUES ('00000000-0000-0000-0000-000000000001', 'f', 'rome', "
                     "now())")
        conn.execute(
            "INSERT INTO fer_edge.windows (device_id, run_id, window_id, store, start_at, end_at, frames, faces, "
            "valence_positive, valence_neutral, valence_negative, satisfaction, partial, happiness) VALUES "
            "('00000000-0000-0000-0000-000000000001', 1, 1, 'rome', now(), now(), 10, 5, 5, 0, 0, 1.0, false, 5)"
        )


@pytest.mark.slow
def test_sync_carries_the_camera_into_a_database_of_the_version_before(
    tmp_path: Path, pg: object, pg_db: str
) -> None:
    import psycopg

    url = pg.url(pg_db)  # type: ignore[attr-defined]
    database_of_the_version_before(pg, pg_db)
    db = old_log(tmp_path / "mood.db")
    two_cameras_into(db)
    code, out = cli("sync", str(db), "--to", url, "--store", "berlin")
    assert code == 0, out
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM fer_edge.schema_version ORDER BY 1")]
        assert versions[:2] == [1, 2]  # 2: windows.camera, added to the database of the version before
        rows = conn.execute("SELECT store, camera, faces FROM fer_edge.windows ORDER BY store, window_id").fetchall()
    assert rows == [("berlin", "cam0", 3), ("berlin", "entrance", 4), ("berlin", "checkout", 2), ("rome", "cam0", 5)]
    code, out = cli("report", url, "--by", "store,camera", "--csv", str(tmp_path / "chain.csv"))
    assert code == 0, out
    lines = (tmp_path / "chain.csv").read_text().splitlines()
    assert lines[0].startswith("store,camera,stores,windows,frames,faces,")
    keyed = {tuple(line.split(",")[:2]): line.split(",") for line in lines[1:]}
    assert set(keyed) == {("berlin", "cam0"), ("berlin", "checkout"), ("berlin", "entrance"), ("rome", "cam0")}
    assert keyed[("berlin", "entrance")][5] == "4" and keyed[("berlin", "checkout")][9] == "-1.0000"
    code, out = cli("report", url, "--by", "camera", "--camera", "cam0")
    assert code == 0 and "cam0" in out and "entrance" not in out, out
    assert "8 faces" in out  # berlin's 3 and rome's 5
