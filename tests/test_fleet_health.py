"""Fleet health against the real PostgreSQL: the forward-only migration of a database made by the
version-1 schema, health recorded by ``run --sync`` and by the forwarder, and ``report URL --health``
(silent, camera down, behind on sync, other model; table, CSV and JSON)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from fleet_helpers import assert_exactly_once, device_id, make_log
from pg_fixture import PgServer
from test_camera_helpers import tiny_fer_model
from typer.testing import CliRunner

from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.metrics_service import HealthFigures
from fer_edge.camera.prometheus_metrics import BuildInfo
from fer_edge.cli import app
from fer_edge.fleet import schema
from fer_edge.fleet.forward import Forwarder
from fer_edge.fleet.health import DeviceHealth, record_health

pytest.importorskip("psycopg", reason="the fleet extra (psycopg) is not installed")


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})  # a table row on one line
    return result.exit_code, result.output


def query(url: str, sql: str, *params: Any) -> List[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql, params or None).fetchall()]  # type: ignore[arg-type]


def test_a_version_1_database_is_migrated_forward_keeping_its_windows(
    tmp_path: Path, pg: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg.url(pg_db)
    log = make_log(tmp_path / "old.db", 5)
    with monkeypatch.context() as old:  # the fer-edge of today: schema version 1 only, windows without cameras
        from dataclasses import replace

        from fer_edge.fleet import forward
        from fer_edge.fleet.outbox import Outbox

        old.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        old.setattr(schema, "SCHEMA_VERSION", 1)
        columns = tuple(c for c in schema.WINDOW_COLUMNS if c != "camera")
        old.setattr(forward, "WINDOW_COLUMNS", columns)
        old.setattr(forward, "_COLS", ", ".join(columns))
        batch_of_today = Outbox.next_batch

        def without_camera(self: Outbox, *args: Any, **kwargs: Any) -> Any:
            batch = batch_of_today(self, *args, **kwargs)
            return None if batch is None else replace(batch, rows=[row[:-1] for row in batch.rows])

        old.setattr(Outbox, "next_batch", without_camera)
        code, out = cli("sync", str(log), "--to", url, "--store", "berlin-01")
        assert code == 0, out
    assert query(url, "SELECT version FROM fer_edge.schema_version") == [(1,)]
    assert query(url, "SELECT to_regclass('fer_edge.device_health')") == [(None,)]
    code, out = cli("sync", "--migrate-only", "--to", url)
    assert code == 0 and f"version {schema.SCHEMA_VERSION} (was 1)" in out, out
    versions = [(v,) for v, _ in schema.MIGRATIONS]
    assert query(url, "SELECT version FROM fer_edge.schema_version ORDER BY 1") == versions
    assert_exactly_once(url, log)  # the migration only adds
    assert query(url, "SELECT count(*) FROM fer_edge.device_health") == [(0,)]
    code, out = cli("sync", "--migrate-only", "--to", url)
    assert code == 0 and "(already)" in out, out
    # A device of today's version (no health records) is listed, its state unknown.
    code, out = cli("report", url, "--health")
    assert code == 0, out
    assert "berlin-01" in out and "unknown" in out


def noise_video(path: Path, n_frames: int) -> Path:
    import numpy as np
    from scenes import write_video

    rng = np.random.default_rng(0)
    return write_video(path, [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(n_frames)])


def test_run_sync_records_the_device_health(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    pytest.importorskip("cv2")
    url, log = pg.url(pg_db), tmp_path / "mood.db"
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    code, out = cli("run", "--source", str(noise_video(tmp_path / "v.avi", 30)), "--model", str(model),
                    "--log", str(log), "--window", "1", "--sync", url, "--store", "berlin-01")  # fmt: skip
    assert code == 0, out
    rows = query(url, "SELECT device_id::text, store, fer_edge_version, model, model_sha256, cameras_up, "
                      "cameras_total, windows_waiting, last_seen > now() - interval '1 minute' "
                      "FROM fer_edge.device_health")  # fmt: skip
    from fer_edge import __version__
    from fer_edge.camera.prometheus_metrics import file_sha256

    assert rows == [(device_id(log), "berlin-01", __version__, "tiny.onnx", file_sha256(model), 1, 1, 0, True)]


class Chain:
    """Devices syncing real logs through the real forwarder, each reporting the figures it is given."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path, self.url = tmp_path, url
        self.ids: Dict[str, str] = {}

    def device(self, name: str, store: str, camera_up: bool = True, sha: str = "a" * 64) -> str:
        log = make_log(self.tmp_path / f"{name}.db", 3, seed=len(self.ids))
        assert cli("sync", str(log), "--to", self.url, "--store", store)[0] == 0  # labels the device
        camera = CameraMetrics("cam0")
        camera.frame({"capture": 1.0}, 0, 0.01, False)
        if not camera_up:
            camera.camera_down(time.time())
        forwarder = Forwarder(log, self.url, echo=lambda line: None, poll_s=0.1)
        forwarder.health.figures = HealthFigures([camera], BuildInfo("9.9", "fer.onnx", sha, "yunet", "ort", "int8"))
        forwarder.start()
        deadline = time.monotonic() + 30
        while not query(self.url, "SELECT 1 FROM fer_edge.device_health WHERE device_id = %s", device_id(log)):
            assert time.monotonic() < deadline, "the forwarder recorded no health in 30 s"
            time.sleep(0.1)
        forwarder.close()
        self.ids[name] = device_id(log)
        return self.ids[name]


def report_json(tmp_path: Path, url: str, *extra: str) -> Dict[str, Any]:
    target = tmp_path / "health.json"
    code, out = cli("report", url, "--health", "--json", str(target), *extra)
    assert code == 0, out
    return dict(json.loads(target.read_text()))


def test_the_health_report_names_each_device_state(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    url = pg.url(pg_db)
    chain = Chain(tmp_path, url)
    quiet = chain.device("quiet", "berlin-01")  # then stops syncing
    time.sleep(3.5)
    chain.device("fine", "berlin-02")
    dark = chain.device("dark", "hamburg-01", camera_up=False)
    odd = chain.device("odd", "paris-01", sha="b" * 64)
    # A device whose forwarder fails with windows piling up (written as its health record would be).
    import psycopg

    with psycopg.connect(url) as conn:
        record_health(conn, DeviceHealth("00000000-0000-4000-8000-000000000001", "fp", "rome-01",
                                         {"model_sha256": "a" * 64, "cameras_up": 1, "cameras_total": 1}, 250,
                                         "cannot connect to postgresql://fer:***@central/mood"))  # fmt: skip

    doc = report_json(tmp_path, url, "--silent-after", "0.05")  # 3 s
    by_store = {d["store"]: d for d in doc["devices"]}
    assert by_store["berlin-01"]["state"] == "silent" and by_store["berlin-01"]["device_id"] == quiet
    assert by_store["berlin-01"]["silent_s"] >= 3.0
    assert by_store["berlin-02"]["state"] == "ok"
    assert by_store["hamburg-01"]["state"] == "camera down" and by_store["hamburg-01"]["device_id"] == dark
    assert (by_store["hamburg-01"]["cameras_up"], by_store["hamburg-01"]["cameras_total"]) == (0, 1)
    assert by_store["paris-01"]["state"] == "other model" and by_store["paris-01"]["device_id"] == odd
    assert by_store["rome-01"]["state"] == "behind on sync" and by_store["rome-01"]["windows_waiting"] == 250
    assert doc["states"] == {"silent": 1, "camera down": 1, "behind on sync": 1, "other model": 1, "ok": 1,
                             "unknown": 0}  # fmt: skip

    # The default (15 minutes): nobody is silent yet; the table and the CSV say the same.
    target = tmp_path / "health.csv"
    code, out = cli("report", url, "--health", "--csv", str(target))
    assert code == 0, out
    assert "silent" not in out.split("\n5 devices")[0].split("berlin-01")[1].split("\n")[0]
    assert "camera down" in out and "other model" in out and "5 devices" in out
    with target.open() as f:
        rows = {r["store"]: r for r in csv.DictReader(f)}
    assert rows["berlin-01"]["state"] == "ok" and rows["hamburg-01"]["state"] == "camera down"
    assert rows["rome-01"]["problems"] == "behind on sync" and rows["rome-01"]["last_error"].startswith("cannot")
    assert rows["paris-01"]["model_sha256"] == "b" * 64

    only = report_json(tmp_path, url, "--store", "paris-01")
    assert [d["store"] for d in only["devices"]] == ["paris-01"]


def test_a_copied_log_does_not_overwrite_another_device_health(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    url = pg.url(pg_db)
    real = Chain(tmp_path, url).device("real", "berlin-01")
    import psycopg

    with psycopg.connect(url) as conn:
        assert not record_health(conn, DeviceHealth(real, "another-fingerprint", "evil", {"cameras_up": 0}, 0))
    assert query(url, "SELECT store, cameras_up FROM fer_edge.device_health") == [("berlin-01", 1)]


@pytest.mark.parametrize("args, needle", [
    (["mood.db", "--health"], "--health is for a central database"),
    (["URL", "--health", "--by", "day"], "--by do not apply"),
    (["URL", "--json", "x.json"], "--json is for --health"),
])  # fmt: skip
def test_bad_health_options_are_one_line(tmp_path: Path, pg: PgServer, pg_db: str, args: List[str],
                                         needle: str) -> None:  # fmt: skip
    args = [pg.url(pg_db) if a == "URL" else str(tmp_path / a) if a.endswith((".db", ".json")) else a for a in args]
    code, out = cli("report", *args)
    assert code != 0 and needle in out and len(out.strip().splitlines()) == 1, out


def test_health_on_a_database_still_at_version_1(
    tmp_path: Path, pg: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg.url(pg_db)
    with monkeypatch.context() as old:
        old.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        old.setattr(schema, "SCHEMA_VERSION", 1)
        assert cli("sync", "--migrate-only", "--to", url)[0] == 0
    code, out = cli("report", url, "--health")
    assert code != 0 and "version 1, from before device health" in out and len(out.strip().splitlines()) == 1, out


def test_the_camera_role_of_the_docs_may_record_its_health(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    """docs/fleet.md's grants let a least-privilege camera role record (and replace) its health row."""
    pg.admin("DROP ROLE IF EXISTS cam_h; CREATE ROLE cam_h LOGIN PASSWORD 'cam-pw'")
    assert cli("sync", "--migrate-only", "--to", pg.url(pg_db))[0] == 0
    docs = (Path(__file__).resolve().parents[1] / "docs" / "fleet.md").read_text()
    grants = docs.split("<!-- grants -->")[1].split("```sql")[1].split("```")[0]
    pg.admin(grants.replace("fer_camera", "cam_h"), db=pg_db)
    chain = Chain(tmp_path, pg.url(pg_db, user="cam_h", password="cam-pw"))
    first = chain.device("cam", "berlin-01")
    before = query(pg.url(pg_db), "SELECT last_seen FROM fer_edge.device_health")
    assert chain.device("cam", "berlin-01") == first  # the same log again: its row replaced, not added
    after = query(pg.url(pg_db), "SELECT last_seen FROM fer_edge.device_health")
    assert len(after) == 1 and after[0][0] > before[0][0]


def test_failed_sync_passes_reach_the_endpoint(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    """The series of the sync-failing alert: the forwarder's failed passes and the windows waiting."""
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    import urllib.request

    from fer_edge.camera.metrics_service import MetricsService
    from fer_edge.fleet.live_sync import waiting

    log = make_log(tmp_path / "mood.db", 4)
    forwarder = Forwarder(log, pg.url(pg_db, password="wrong"), echo=lambda line: None, poll_s=0.1,
                          max_backoff_s=0.5)  # fmt: skip
    camera = CameraMetrics("cam0", to_sync=lambda: waiting(forwarder))
    service = MetricsService().start("127.0.0.1", 0)
    try:
        service.watch([camera], BuildInfo("9.9", "fer.onnx", "a" * 64, "yunet", "ort", "int8"), forwarder)
        forwarder.start()
        deadline = time.monotonic() + 30
        while forwarder.errors < 2:
            assert time.monotonic() < deadline, "the forwarder did not fail twice in 30 s"
            time.sleep(0.05)
        with urllib.request.urlopen(service.url, timeout=5) as response:
            text = response.read().decode()
    finally:
        forwarder.close()
        service.close()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(lines["fer_edge_sync_errors_total"]) >= 2
    assert float(lines["fer_edge_windows_unsynced"]) == 4
