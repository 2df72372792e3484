"""What ``fer-edge train`` prints: a readable summary that names each split once, and no library warnings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_data_readers import write_image_folders
from test_quiet import fer_edge

from fer_edge.commands.train import summary_line


def test_training_on_image_folders_prints_a_clean_summary(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("PIL")
    write_image_folders(tmp_path / "faces")
    result = fer_edge(
        "train", "--data", "faces", "--out", "run", "--epochs", "1", "--batch-size", "8",
        "--device", "cpu", "--no-amp", "--threads", "1", "--no-cache",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (summary,) = result.stdout.splitlines()
    # image folders have no PublicTest: best.pt is selected on a held-out tenth of Training, named once
    assert re.fullmatch(
        r"best\.pt: epoch 1, held-out 10% of Training \d+\.\d\d% \(selected on\), "
        r"PrivateTest \d+\.\d\d% \(\d+\.\d\d% without its copies in Training\)",
        summary,
    ), summary
    assert summary.count("held-out") == 1 and "=" not in summary and "_without_" not in summary
    assert "Warning" not in result.stderr and "padding" not in result.stderr, result.stderr
    assert (tmp_path / "run" / "best.pt").is_file()


def test_summary_names_the_selection_split_once() -> None:
    metrics = {"selected_on": "PublicTest", "PublicTest": 68.07, "best_epoch": 109, "PrivateTest": 69.571}
    assert summary_line(metrics) == "best.pt: epoch 109, PublicTest 68.07% (selected on), PrivateTest 69.57%"
