"""The output guard (fer_edge/core/paths.py) and durable writes (fer_edge/core/atomic.py), with real faults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fs_faults import fill, remount_read_only, tmpfs

from fer_edge.core import atomic
from fer_edge.core.atomic import atomic_path, remove_stale_temps, write_bytes_atomic, write_text_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.paths import check_writable, guard_outputs, same_file

# ---- output vs input ---------------------------------------------------------------------------


def test_same_file_sees_links_and_spellings(tmp_path: Path) -> None:
    src = tmp_path / "model.pt"
    src.write_bytes(b"weights")
    os.link(src, tmp_path / "hard.pt")
    (tmp_path / "soft.pt").symlink_to(src)
    (tmp_path / "sub").mkdir()
    assert same_file(src, tmp_path / "hard.pt")
    assert same_file(src, tmp_path / "soft.pt")
    assert same_file(src, tmp_path / "sub" / ".." / "model.pt")
    other = tmp_path / "copy.pt"
    other.write_bytes(b"weights")  # same content, another file
    assert not same_file(src, other)
    assert not same_file(src, tmp_path / "not-yet.onnx")


@pytest.mark.parametrize("link", ["same", "hard", "soft"])
def test_an_output_that_is_an_input_is_refused_and_untouched(tmp_path: Path, link: str) -> None:
    src = tmp_path / "model.pt"
    src.write_bytes(b"weights")
    out = {"same": src, "hard": tmp_path / "h.onnx", "soft": tmp_path / "s.onnx"}[link]
    if link == "hard":
        os.link(src, out)
    elif link == "soft":
        out.symlink_to(src)
    with pytest.raises(FerEdgeError, match=r"--out .* is the input CHECKPOINT .*model\.pt.*choose another --out"):
        guard_outputs({"CHECKPOINT": src, "--data": None}, {"--out": out})
    assert src.read_bytes() == b"weights"


def test_two_outputs_on_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FerEdgeError, match="--json and --markdown are the same file"):
        guard_outputs({}, {"--json": tmp_path / "r.json", "--markdown": tmp_path / "r.json"})


def test_distinct_paths_pass_and_leave_nothing_behind(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("x")
    guard_outputs({"--data": src}, {"--out": tmp_path / "deep" / "er" / "out.onnx", "--csv": None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no folder, no probe file


def test_a_folder_where_the_file_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out.onnx").mkdir()
    with pytest.raises(FerEdgeError, match="--out is a folder"):
        check_writable("--out", tmp_path / "out.onnx")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FerEdgeError, match="must be a folder"):
        check_writable("--out", tmp_path / "file", directory=True)
    with pytest.raises(FerEdgeError, match="is a file, not a folder"):
        check_writable("--out", tmp_path / "file" / "below" / "m.onnx")


def test_a_read_only_mount_is_refused_before_any_work(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro") as mnt:
        (mnt / "old.onnx").write_bytes(b"old")
        remount_read_only(mnt)
        with pytest.raises(FerEdgeError, match=r"old\.onnx: --out cannot be written: Read-only file system"):
            check_writable("--out", mnt / "old.onnx")
        with pytest.raises(FerEdgeError, match="cannot be created in .*Read-only file system"):
            check_writable("--out", mnt / "new" / "m.onnx")
        assert (mnt / "old.onnx").read_bytes() == b"old"


# ---- durable, atomic writes --------------------------------------------------------------------


def test_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", size="64k") as mnt:
        target = mnt / "report.json"
        write_text_atomic(target, "old\n")
        with pytest.raises(FerEdgeError) as info:
            write_bytes_atomic(target, b"x" * 200_000)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"{target}: cannot write: No space left on device (the disk is full)")
        assert message.endswith("the previous file is unchanged")
        assert target.read_text() == "old\n"
        assert [p.name for p in mnt.iterdir()] == ["report.json"]  # the temporary file is gone
        fill(mnt)
        with pytest.raises(FerEdgeError, match="new.json: cannot write: .*nothing was written"):
            write_text_atomic(mnt / "new.json", "{}" * 1000)
        assert not (mnt / "new.json").exists()


def test_the_file_and_its_folder_are_fsynced_around_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append("fsync dir" if os.path.isdir(target) else "fsync file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    write_text_atomic(tmp_path / "a.txt", "data")
    assert events == ["fsync file", "rename", "fsync dir"]
    assert (tmp_path / "a.txt").read_text() == "data"


def test_the_temporary_name_carries_the_pid(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "m.onnx") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".m.onnx.{os.getpid()}.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"1")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temps_of_killed_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "best.pt"
    dead = tmp_path / f".best.pt.{_dead_pid()}.abc123.tmp"
    dead.write_bytes(b"half a checkpoint")
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".best.pt.{live_writer.pid}.def456.tmp"
        live.write_bytes(b"being written")
        mine = tmp_path / f".best.pt.{os.getpid()}.ghi789.tmp"
        mine.write_bytes(b"this process")
        other_target = tmp_path / f".last.pt.{_dead_pid()}.jkl012.tmp"
        other_target.write_bytes(b"not this target's")
        write_bytes_atomic(target, b"new")  # the next write of the same target cleans up
        assert not dead.exists()
        assert live.exists() and mine.exists() and other_target.exists()
        assert remove_stale_temps(tmp_path / "last.pt") == [other_target]
    finally:
        live_writer.kill()
        live_writer.wait()
    assert target.read_bytes() == b"new"


def test_a_killed_command_leaves_a_temp_the_next_run_removes(tmp_path: Path) -> None:
    """A real kill -9 between writing and renaming, then the next write of that file."""
    target = tmp_path / "engine.bin"
    script = (
        "import os, sys, time\n"
        "from fer_edge.core.atomic import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    tmp.write_bytes(b'half')\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    left = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    assert left.exists() and not target.exists()
    write_bytes_atomic(target, b"whole")
    assert not left.exists() and target.read_bytes() == b"whole"
