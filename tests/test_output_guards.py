"""Every command refuses, before any work, an output that is one of its inputs or cannot be written.

The inputs here hold placeholder bytes: the refusal must come before anything reads them, and
they must be unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Tuple, Union

import pytest
from conftest import one_line_error, skip_host_command_off_host
from fs_faults import fill, remount_read_only, tmpfs
from typer.testing import CliRunner, Result

from fer_edge.cli import app


def invoke(args: list[str | Path]) -> Result:
    skip_host_command_off_host(str(args[0]))
    return CliRunner().invoke(app, [str(a) for a in args])


@dataclass
class Files:
    root: Path

    def __call__(self, name: str) -> Path:
        """An input file with placeholder content."""
        path = self.root / name
        if not path.exists():
            path.write_bytes(f"placeholder {name}\n".encode())
        return path

    def link(self, name: str, target: str) -> Path:
        path = self.root / name
        os.link(self(target), path)
        return path


# command line, the option the refusal names, and the input it names
Case = Callable[[Files], Tuple[List[Union[str, Path]], str, str]]
CASES: dict[str, Case] = {
    "export --out checkpoint": lambda f: (["export", f("a.pt"), "--out", f("a.pt")], "--out", "CHECKPOINT"),
    "export --out hard link": lambda f: (
        ["export", f("a.pt"), "--out", f.link("b.onnx", "a.pt")], "--out", "CHECKPOINT"),
    "export --out data": lambda f: (
        ["export", f("a.pt"), "--data", f("fer.csv"), "--out", f("fer.csv")], "--out", "--data"),
    "quantize --out model": lambda f: (
        ["quantize", f("m.onnx"), "--data", f("fer.csv"), "--out", f("m.onnx")], "--out", "MODEL"),
    "quantize --save-manifest manifest": lambda f: (
        ["quantize", f("m.onnx"), "--data", f("fer.csv"), "--out", f.root / "q.onnx", "--manifest", f("c.json"),
         "--save-manifest", f("c.json")], "--save-manifest", "--manifest"),
    "quantize --report-json votes": lambda f: (
        ["quantize", f("m.onnx"), "--data", f("fer.csv"), "--votes", f("v.csv"), "--out", f.root / "q.onnx",
         "--report-json", f("v.csv")], "--report-json", "--votes"),
    "evaluate --confusion data": lambda f: (
        ["evaluate", f("a.pt"), "--data", f("fer.csv"), "--confusion", f("fer.csv")], "--confusion", "--data"),
    "evaluate --confusion model": lambda f: (
        ["evaluate", f("a.onnx"), "--data", f("fer.csv"), "--confusion", f.link("c.png", "a.onnx")],
        "--confusion", "MODEL"),
    "bench --json model": lambda f: (["bench", f("a.onnx"), "--json", f("a.onnx")], "--json", "model"),
    "bench --markdown data": lambda f: (
        ["bench", "--models", f("a.onnx"), "--data", f("fer.csv"), "--markdown", f("fer.csv")], "--markdown", "--data"),
    "bench --plot hard link to a model": lambda f: (
        ["bench", f("a.onnx"), f("b.onnx"), "--plot", f.link("p.png", "b.onnx")], "--plot", "model"),
    "build-engine --out model": lambda f: (["build-engine", f("m.onnx"), "--out", f("m.onnx")], "--out", "MODEL"),
    "build-engine --timing-cache model": lambda f: (
        ["build-engine", f("m.onnx"), "--out", f.root / "m.engine", "--timing-cache", f("m.onnx")],
        "--timing-cache", "MODEL"),
    "build-engine --print-trtexec --timing-cache model": lambda f: (
        ["build-engine", f("m.onnx"), "--out", f.root / "m.engine", "--timing-cache", f("m.onnx"), "--print-trtexec"],
        "--timing-cache", "MODEL"),
    "build-engine --print-trtexec --out model": lambda f: (
        ["build-engine", f("m.onnx"), "--out", f("m.onnx"), "--print-trtexec"], "--out", "MODEL"),
    "bench --json camera video": lambda f: (
        ["bench", "--camera", f("clip.avi"), "--json", f("clip.avi")], "--json", "--camera"),
    "bench --markdown detector": lambda f: (
        ["bench", "--camera", f("clip.avi"), "--detector-model", f("yunet.onnx"), "--markdown", f("yunet.onnx")],
        "--markdown", "--detector-model"),
    "fetch-detector --out from-file": lambda f: (
        ["fetch-detector", "--from-file", f("yunet.onnx"), "--out", f.link("y.onnx", "yunet.onnx")],
        "--out", "--from-file"),
    "train --out teacher": lambda f: (
        ["train", "--data", f("fer.csv"), "--teacher", f("t.npz"), "--out", f("t.npz")], "--out", "--teacher"),
    "train --out folder holding the teacher as a run file": lambda f: (
        ["train", "--data", f("fer.csv"), "--teacher", f("last.pt"), "--out", f.root], "--out (last.pt)",
        "--teacher"),
    "run --log model": lambda f: (
        ["run", "--source", f("clip.avi"), "--model", f("m.onnx"), "--log", f("m.onnx")], "--log", "--model"),
    "run --log video source": lambda f: (
        ["run", "--source", f("clip.avi"), "--model", f("m.onnx"), "--log", f("clip.avi")], "--log", "--source"),
    "run --save-video source": lambda f: (
        ["run", "--source", f("clip.avi"), "--model", f("m.onnx"), "--save-video", f.link("out.avi", "clip.avi")],
        "--save-video", "--source"),
    "run --log detector": lambda f: (
        ["run", "--source", "0", "--model", f("m.onnx"), "--detector-model", f("yunet.onnx"), "--log",
         f("yunet.onnx")], "--log", "--detector-model"),
    "report --csv log": lambda f: (["report", f("mood.db"), "--csv", f("mood.db")], "--csv", "LOG"),
    "report --plot hard link to the log": lambda f: (
        ["report", f("mood.db"), "--plot", f.link("m.png", "mood.db")], "--plot", "LOG"),
    "train --out data": lambda f: (["train", "--data", f("fer.csv"), "--out", f("fer.csv")], "--out", "--data"),
    "train --out folder holding the data as a run file": lambda f: (
        ["train", "--data", f("history.csv"), "--out", f.root], "--out (history.csv)", "--data"),
}


def digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_an_output_that_is_an_input_is_refused_before_any_work(case: str, tmp_path: Path) -> None:
    files = Files(tmp_path)
    args, option, input_name = CASES[case](files)
    before = digests(tmp_path)
    line = one_line_error(invoke(args))
    assert f"error: {option} " in line and f"is the input {input_name}" in line, line
    assert "never overwrites an input" in line
    assert digests(tmp_path) == before  # nothing read-and-rewritten, nothing new written


# command line with its one output on the mount, and the option named
ReadOnly = Callable[[Files, Path], Tuple[List[Union[str, Path]], str]]
READ_ONLY: dict[str, ReadOnly] = {
    "export": lambda f, ro: (["export", f("a.pt"), "--out", ro / "m.onnx"], "--out"),
    "quantize": lambda f, ro: (["quantize", f("m.onnx"), "--data", f("fer.csv"), "--out", ro / "q.onnx"], "--out"),
    "quantize --report-json": lambda f, ro: (
        ["quantize", f("m.onnx"), "--data", f("fer.csv"), "--out", f.root / "q.onnx", "--report-json",
         ro / "r.json"], "--report-json"),
    "evaluate": lambda f, ro: (["evaluate", f("a.pt"), "--data", f("fer.csv"), "--confusion", ro / "c.png"],
                               "--confusion"),
    "evaluate --record": lambda f, ro: (["evaluate", ro / "old.onnx", "--data", f("fer.csv"), "--record"],
                                        "MODEL (--record)"),
    "bench": lambda f, ro: (["bench", f("a.onnx"), "--json", ro / "b.json"], "--json"),
    "build-engine": lambda f, ro: (["build-engine", f("m.onnx"), "--out", ro / "m.engine"], "--out"),
    "run": lambda f, ro: (["run", "--source", f("clip.avi"), "--model", f("m.onnx"), "--log", ro / "mood.db"],
                          "--log"),
    "report": lambda f, ro: (["report", f("mood.db"), "--csv", ro / "w.csv"], "--csv"),
    "train": lambda f, ro: (["train", "--data", f("fer.csv"), "--out", ro / "run"], "--out"),
    "train into a new folder": lambda f, ro: (["train", "--data", f("fer.csv"), "--out", ro / "a" / "run"], "--out"),
}


@pytest.mark.parametrize("case", list(READ_ONLY))
def test_an_output_on_a_read_only_mount_is_refused_before_any_work(case: str, tmp_path: Path) -> None:
    files = Files(tmp_path / "in")
    files.root.mkdir()
    with tmpfs(tmp_path / "ro", size="1m") as ro:
        (ro / "old.onnx").write_bytes(b"placeholder")
        remount_read_only(ro)
        args, option = READ_ONLY[case](files, ro)
        line = one_line_error(invoke(args))
        assert option in line and "Read-only file system" in line, line


@pytest.mark.parametrize("option", ["--out", "--confusion"])
def test_a_folder_where_the_output_file_should_be_is_refused(option: str, tmp_path: Path) -> None:
    files = Files(tmp_path)
    (tmp_path / "out").mkdir()
    args = (["export", files("a.pt"), "--out", tmp_path / "out"] if option == "--out" else
            ["evaluate", files("a.pt"), "--data", files("fer.csv"), "--confusion", tmp_path / "out"])
    assert f"{option} is a folder" in one_line_error(invoke(args))


# ---- a full disk after the work: one line naming the file and the reason --------------------------

torch_needed = pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="needs torch (pip install 'fer-edge[train]')"
)


@torch_needed
def test_export_onto_a_full_disk(tmp_path: Path) -> None:
    from test_evaluate_info import write_checkpoint

    ckpt = write_checkpoint(tmp_path / "a.pt")
    with tmpfs(tmp_path / "full", size="64k") as mnt:
        fill(mnt)
        line = one_line_error(invoke(["export", ckpt, "--out", mnt / "m.onnx"]))
        assert line == f"error: {mnt / 'm.onnx'}: cannot write: No space left on device (the disk is full); " \
                       "nothing was written"
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"]


@torch_needed
def test_train_onto_a_full_disk(tmp_path: Path) -> None:
    from conftest import synthetic_faces, write_fer_csv

    from fer_edge.model.labels import FER2013_LABELS

    images, labels = synthetic_faces(40, len(FER2013_LABELS))
    data = write_fer_csv(tmp_path / "faces.csv", images, labels, ["Training"] * 30 + ["PublicTest"] * 10)
    with tmpfs(tmp_path / "full", size="64k") as mnt:
        result = invoke(["train", "--data", data, "--out", mnt / "run", "--epochs", "1", "--device", "cpu",
                         "--no-amp", "--threads", "1"])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert errors == [f"error: {mnt / 'run' / 'best.pt'}: cannot write: No space left on device "
                          "(the disk is full); nothing was written"], result.output


def test_evaluate_prints_its_figures_before_a_confusion_png_hits_a_full_disk(tmp_path: Path) -> None:
    from conftest import invoke_apart, synthetic_faces, write_fer_csv

    from fer_edge.model.shipped import shipped_model

    images, labels = synthetic_faces(12, 7)
    data = write_fer_csv(tmp_path / "faces.csv", images, labels, ["Training", "PublicTest"] + ["PrivateTest"] * 10)
    with tmpfs(tmp_path / "full", size="64k") as mnt:
        fill(mnt)
        result = invoke_apart(app, ["evaluate", shipped_model("fer2013", "fp32"), "--data", data, "--device", "cpu",
                                    "--json", "--confusion", mnt / "c.png"])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert json.loads(result.stdout.strip().splitlines()[0])["n"] == 10  # the figures came out
        assert result.stderr.strip().splitlines() == [
            f"error: {mnt / 'c.png'}: cannot write: No space left on device (the disk is full); nothing was "
            "written (the figures are printed above)"
        ]


def test_bench_keeps_its_table_and_other_outputs_when_json_hits_a_full_disk(tmp_path: Path) -> None:
    from conftest import invoke_apart

    from fer_edge.model.shipped import shipped_model

    with tmpfs(tmp_path / "full", size="64k") as mnt:
        fill(mnt)
        result = invoke_apart(app, ["bench", shipped_model("fer2013", "fp32"), "--device", "cpu", "--min-time",
                                    "0.01", "--min-iters", "1", "--batch", "1", "--json", mnt / "b.json",
                                    "--markdown", tmp_path / "b.md"])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "p50" in result.stdout and f"wrote {tmp_path / 'b.md'}" in result.stdout.replace("\n", "")
        assert "fer2013.onnx" in (tmp_path / "b.md").read_text()
        assert result.stderr.strip().splitlines() == [
            f"error: {mnt / 'b.json'}: cannot write: No space left on device (the disk is full); nothing was "
            "written (the measured figures are in the table above)"
        ]
        assert not (mnt / "b.json").exists()
