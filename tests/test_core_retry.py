"""The one backoff: exact doubling without jitter (fake clocks rely on it), bounded jitter, a way out."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

from fer_edge.core.retry import Backoff

PACKAGE = Path(__file__).resolve().parents[1] / "fer_edge"


def test_delays_double_to_the_cap_and_reset() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_jitter_spreads_each_delay_within_its_fraction_and_never_past_the_cap() -> None:
    backoff = Backoff(first=1.0, cap=8.0, jitter=0.2)
    delays = [backoff.next() for _ in range(200)]
    assert 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4
    assert all(d <= 8.0 for d in delays) and len(set(delays[5:])) > 1


@pytest.mark.parametrize(("first", "cap", "jitter"), [(0.0, 1.0, 0.0), (2.0, 1.0, 0.0), (1.0, 2.0, 1.0)])
def test_a_backoff_that_would_spin_or_stall_is_refused(first: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="bad backoff"):
        Backoff(first=first, cap=cap, jitter=jitter)


def test_wait_returns_at_once_when_stopped() -> None:
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    t = time.monotonic()
    assert Backoff(first=30.0, cap=30.0).wait(stop) is True
    assert time.monotonic() - t < 5.0
    assert Backoff(first=0.01, cap=0.01).wait(threading.Event()) is False


def _imports(folder: str) -> set[str]:
    found = set()
    for path in (PACKAGE / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module + "".join(f".{a.name}" for a in node.names if node.module == "fer_edge"))
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("folder", ["moodlog", "fleet", "core"])
def test_the_mood_log_and_the_fleet_never_import_the_camera(folder: str) -> None:
    imported = _imports(folder)
    assert not [m for m in imported if m.startswith(("fer_edge.camera", "fer_edge.commands"))], imported
    if folder == "core":
        assert not [m for m in imported if m.startswith("fer_edge.") and not m.startswith("fer_edge.core")]
