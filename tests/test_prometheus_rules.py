"""The shipped Prometheus files load in a real Prometheus toolchain, and the alerts fire when they should.

``promtool`` comes with Debian's ``prometheus`` package (scripts/test.sh installs it); where it is
missing these tests skip with that reason. The rule unit tests in
``scripts/prometheus/fer-edge-alerts.test.yml`` feed series and state which alerts fire and when.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[1] / "scripts" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")


def promtool(*args: str, cwd: Path = FILES) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_scrape_config_loads() -> None:
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


@needs_promtool
def test_alert_rules_load() -> None:
    done = promtool("check", "rules", "fer-edge-alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


@needs_promtool
def test_alerts_fire_when_they_should() -> None:
    done = promtool("test", "rules", "fer-edge-alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_rule_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a camera-down alert that fires after 1 minute fails them."""
    for name in ("fer-edge-alerts.yml", "fer-edge-alerts.test.yml"):
        shutil.copy(FILES / name, tmp_path / name)
    rules = tmp_path / "fer-edge-alerts.yml"
    text = rules.read_text(encoding="utf-8")
    head, tail = text.split("alert: FerEdgeCameraDown", 1)
    rules.write_text(head + "alert: FerEdgeCameraDown" + tail.replace("for: 5m", "for: 1m", 1), encoding="utf-8")
    done = promtool("test", "rules", "fer-edge-alerts.test.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "FerEdgeCameraDown" in done.stdout + done.stderr


def test_every_alert_says_what_to_do() -> None:
    """Each rule is preceded by a comment for the person on call (what it means, what to do)."""
    lines = (FILES / "fer-edge-alerts.yml").read_text(encoding="utf-8").splitlines()
    alerts = [i for i, line in enumerate(lines) if line.strip().startswith("- alert:")]
    assert len(alerts) == 6
    for i in alerts:
        comment = []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            comment.append(lines[j])
            j -= 1
        assert "What to do" in " ".join(comment), f"{lines[i].strip()} has no 'What to do' comment"
