"""The mood log's integrity, each fault made real: a SQLite file's companions as outputs, a log whose
folder vanishes, a full disk at the start, a log from a newer fer-edge or a foreign file, damaged
windows in `report`, and the counts the messages give."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import fill_disk, tmpfs
from test_moodlog_faults import T0, Clock, closed_window, windows_in
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.paths import guard_outputs
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.buffered import BufferedLog
from fer_edge.moodlog.reader import load_windows, read_windows
from fer_edge.moodlog.writer import MoodLog


def one_line_error(result: object, *needles: str) -> str:
    code, output = result.exit_code, result.output  # type: ignore[attr-defined]
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
    for needle in needles:
        assert needle in lines[0], output
    return lines[0]


def log_with_windows(db: Path, n: int, *, close: bool = True) -> MoodLog:
    log = MoodLog(db, FER2013_LABELS)
    for i in range(n):
        log.write_window(*closed_window(i))
    if close:
        log.close()
    return log


# --- a SQLite file is more than one file --------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
@pytest.mark.parametrize("option", ["--csv", "--plot"])
def test_report_never_writes_over_the_logs_companion_files(tmp_path: Path, suffix: str, option: str) -> None:
    db = tmp_path / "mood.db"
    log = log_with_windows(db, 2, close=False)  # as after a killed run: the windows are in mood.db-wal
    companion = Path(f"{db}{suffix}")
    before = companion.read_bytes() if companion.exists() else None
    result = CliRunner().invoke(app, ["report", str(db), option, str(companion)])
    one_line_error(result, f"LOG's {suffix} file", "never overwrites an input")
    assert (companion.read_bytes() if companion.exists() else None) == before
    assert len(load_windows(db)) == 2  # the committed windows are all there
    log.close()


def test_an_output_database_reserves_its_companions_before_it_exists(tmp_path: Path) -> None:
    log = tmp_path / "new.db"
    with pytest.raises(FerEdgeError, match="--log's -wal file"):
        guard_outputs({}, {"--log": log, "--save-video": f"{log}-wal"}, databases=("--log",))
    with pytest.raises(FerEdgeError, match="--source .* is --log's -journal file, which SQLite overwrites"):
        guard_outputs({"--source": f"{log}-journal"}, {"--log": log}, databases=("--log",))
    guard_outputs({"--source": tmp_path / "v.avi"}, {"--log": log}, databases=("--log",))


# --- a log whose folder disappears ------------------------------------------------------------------


def test_a_log_whose_folder_vanishes_is_noticed_held_and_made_anew(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    db, lines, clock = folder / "mood.db", [], Clock()
    log = BufferedLog(MoodLog(db, FER2013_LABELS), echo=lines.append, clock=clock)
    assert log.write_window(*closed_window(0)) and log.in_log == 1
    shutil.rmtree(folder)
    clock.now += 5
    assert not log.write_window(*closed_window(1))  # SQLite would write on into the unlinked file
    assert log.waiting == 1 and log.in_log == 0
    problems = [line for line in lines if "cannot write" in line]
    assert len(problems) == 1 and "gone" in problems[0], lines
    clock.now += 5
    log.write_window(*closed_window(2))
    assert log.waiting == 0 and any("made anew" in line for line in lines), lines
    log.close()
    assert log.in_log == 2  # what the file at the path holds: windows 1 and 2; window 0 went with the folder
    assert [r[1] for r in windows_in(db)] == [T0 + 60, T0 + 120]


def test_a_log_removed_after_its_last_window_is_said_at_the_stop(tmp_path: Path) -> None:
    db, lines = tmp_path / "logs" / "mood.db", []
    log = BufferedLog(MoodLog(db, FER2013_LABELS), echo=lines.append)
    log.write_window(*closed_window(0))
    db.unlink()
    log.close()
    assert log.in_log == 0 and any("the log file is gone" in line for line in lines), lines
    assert not db.exists()


# --- a full disk at the start --------------------------------------------------------------------------


def test_a_run_that_starts_on_a_full_disk_holds_its_windows_and_writes_them_later(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        filler = fill_disk(disk)
        db, lines, clock = disk / "mood.db", [], Clock()
        log = BufferedLog(MoodLog(db, FER2013_LABELS), echo=lines.append, clock=clock)  # no exit
        assert log.run_id is None
        for i in range(5):
            clock.now += 0.5
            log.write_window(*closed_window(i))
            log.poll()
        assert log.waiting == 5
        problems = [line for line in lines if "cannot write" in line]
        assert len(problems) == 1 and "disk is full" in problems[0], lines
        filler.unlink()
        clock.now += 120
        log.poll()
        assert log.waiting == 0 and any("writable again" in line for line in lines), lines
        log.close()
        assert log.in_log == 5
        assert [r[1] for r in windows_in(db)] == [T0 + 60 * i for i in range(5)]


# --- a log from a newer fer-edge, a foreign SQLite file ------------------------------------------------


def test_a_log_from_a_newer_fer_edge_is_never_written_to(tmp_path: Path) -> None:
    db = tmp_path / "mood.db"
    log_with_windows(db, 1)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(FerEdgeError, match=r"newer fer-edge \(mood-log schema version 4, this fer-edge knows 3\)"):
        MoodLog(db, FER2013_LABELS)
    result = CliRunner().invoke(app, ["sync", str(db), "--to", "postgresql://fer@127.0.0.1:1/x", "--store", "s1"])
    if "fer-edge[fleet]" not in result.output:  # with the fleet extra: refused before any server
        one_line_error(result, "newer fer-edge")
    assert db.read_bytes() == before
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("4",)
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert "fleet_device" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert len(load_windows(db)) == 1  # a report still reads what it knows


@pytest.mark.parametrize(
    "tables", ["CREATE TABLE windows (a, b)", "CREATE TABLE windows (a); CREATE TABLE window_counts (b)"]
)
def test_a_foreign_sqlite_file_is_not_a_fer_edge_mood_log(tmp_path: Path, tables: str) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.executescript(tables)
    conn.close()
    before = db.read_bytes()
    with pytest.raises(FerEdgeError, match="not a fer-edge mood log") as err:
        MoodLog(db, FER2013_LABELS)
    assert "no such column" not in str(err.value)
    result = CliRunner().invoke(app, ["report", str(db)])
    assert "no such column" not in one_line_error(result, "not a fer-edge mood log")
    assert db.read_bytes() == before


# --- damaged windows in report; dates outside the calendar ------------------------------------------


def test_report_skips_damaged_windows_by_id_and_reports_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "mood.db"
    log_with_windows(db, 5)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE windows SET faces = 'many' WHERE id = 2")
        conn.execute("UPDATE windows SET start_ts = 1e20 WHERE id = 4")
    conn.close()
    rows, skipped = read_windows(db)
    assert [r.id for r in rows] == [1, 3, 5] and sorted(s[0] for s in skipped) == [2, 4]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(db), "--csv", str(out / "m.csv"), "--plot", str(out / "m.png")])
    assert result.exit_code == 0, result.output
    skipped_lines = [line for line in result.output.splitlines() if "skipped" in line]
    assert len(skipped_lines) == 1 and "2 damaged windows" in skipped_lines[0], result.output
    assert "2 (faces 'many'" in skipped_lines[0] and "4 (start_ts" in skipped_lines[0]
    assert "windows: 3" in result.output
    assert len((out / "m.csv").read_text().splitlines()) == 4


@pytest.fixture
def berlin_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time east of UTC, where the calendar's first and last days fall outside what Python counts."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("when", ["0001-01-01", "9999-12-31T23:59:59"])
@pytest.mark.parametrize("option", ["--since", "--until"])
def test_dates_outside_the_calendar_are_one_line(tmp_path: Path, when: str, option: str, berlin_time: None) -> None:
    db = tmp_path / "mood.db"
    log_with_windows(db, 1)
    one_line_error(CliRunner().invoke(app, ["report", str(db), option, when]), "outside the calendar", when)


def test_a_folder_given_as_the_log_says_so(tmp_path: Path) -> None:
    one_line_error(CliRunner().invoke(app, ["report", str(tmp_path)]), "is a folder, not a mood log")
