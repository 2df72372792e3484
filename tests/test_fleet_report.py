"""``fer-edge report URL``: the chain summed per store, hour and day, with the local report's formula."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fleet_helpers import make_log
from pg_fixture import PASSWORD, PgServer
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.moodlog.reader import load_windows, parse_when
from fer_edge.moodlog.summary import summarize
from fer_edge.moodlog.windows import satisfaction_index

T0 = parse_when("2026-03-01T10:00:00")


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def chain(tmp_path: Path, pg: PgServer, pg_db: str) -> tuple[str, dict[str, Path]]:
    """Two stores: berlin (two devices) and paris; 90 one-minute windows per device from 10:00."""
    url = pg.url(pg_db)
    logs = {
        "berlin-a": make_log(tmp_path / "ba.db", 90, start=T0, seed=1),
        "berlin-b": make_log(tmp_path / "bb.db", 90, start=T0, seed=2),
        "paris": make_log(tmp_path / "p.db", 90, start=T0, seed=3),
    }
    for name, log in logs.items():
        assert cli("sync", str(log), "--to", url, "--store", name.split("-")[0])[0] == 0
    return url, logs


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_by_store_matches_the_local_reports(tmp_path: Path, chain: tuple[str, dict[str, Path]]) -> None:
    url, logs = chain
    code, out = cli("report", url, "--by", "store", "--csv", str(tmp_path / "s.csv"), "--plot", str(tmp_path / "s.png"))
    assert code == 0, out
    assert PASSWORD not in out
    rows = {r["store"]: r for r in read_csv(tmp_path / "s.csv")}
    assert set(rows) == {"berlin", "paris"}
    berlin = load_windows(logs["berlin-a"]) + load_windows(logs["berlin-b"])
    for store, windows in (("berlin", berlin), ("paris", load_windows(logs["paris"]))):
        local = summarize(windows)
        assert int(rows[store]["windows"]) == len(windows)
        assert int(rows[store]["faces"]) == local.faces
        assert int(rows[store]["happiness"]) == local.counts["happy"]
        expected = satisfaction_index(local.polarity["positive"], local.polarity["negative"], local.faces)
        assert float(rows[store]["satisfaction_index"]) == pytest.approx(expected, abs=1e-4)
    assert "contempt" not in rows["paris"]  # no run measured it (FER2013 models)
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_by_hour_and_period_and_store_filter(tmp_path: Path, chain: tuple[str, dict[str, Path]]) -> None:
    url, logs = chain
    code, out = cli("report", url, "--by", "hour", "--store", "paris", "--csv", str(tmp_path / "h.csv"),
                    "--plot", str(tmp_path / "h.png"))  # fmt: skip
    assert code == 0, out
    hours = read_csv(tmp_path / "h.csv")
    assert [int(h["windows"]) for h in hours] == [60, 30]  # 10:00-10:59, 11:00-11:29
    assert all(h["stores"] == "1" for h in hours)
    assert hours[0]["hour"].startswith("2026-03-01T10:00")
    code, out = cli("report", url, "--by", "day", "--since", "2026-03-01T10:30", "--until", "2026-03-01T11:00",
                    "--csv", str(tmp_path / "d.csv"))  # fmt: skip
    assert code == 0, out
    day = read_csv(tmp_path / "d.csv")
    assert len(day) == 1 and int(day[0]["windows"]) == 3 * 30 and day[0]["stores"] == "2"
    local = [w for log in logs.values() for w in load_windows(log, parse_when("2026-03-01T10:30"),
                                                               parse_when("2026-03-01T11:00"))]  # fmt: skip
    assert int(day[0]["faces"]) == sum(w.faces for w in local)


def test_report_bad_input(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    code, out = cli("report", pg.url(pg_db))
    assert code == 2 and "no 'fer_edge' schema" in out, out
    code, out = cli("report", pg.url(pg_db, password="nope"))
    assert code == 2 and "password authentication failed" in out and "nope" not in out, out
    pg.admin("DROP ROLE IF EXISTS nobody_here; CREATE ROLE nobody_here LOGIN PASSWORD 'pw'")
    code, out = cli("sync", "--migrate-only", "--to", pg.url(pg_db))
    assert code == 0, out
    code, out = cli("report", pg.url(pg_db, user="nobody_here", password="pw"))
    assert code == 2 and out.startswith("error: ") and "permission denied" in out and len(out.splitlines()) == 1, out
    code, out = cli("report", pg.url(pg_db), "--by", "week")
    assert code == 2 and "--by" in out, out
    log = make_log(tmp_path / "mood.db", 2)
    code, out = cli("report", str(log), "--by", "store")
    assert code == 2 and "central database" in out, out
    code, out = cli("report", str(log))  # a local log still reports as before
    assert code == 0 and "windows: 2" in out, out
