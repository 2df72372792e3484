"""The FP32 baseline and every row's ratio to it (speedup, accuracy change)."""

from __future__ import annotations

from pathlib import Path

from fer_edge.bench.rows import RowResult


def choose_baseline(rows: list[RowResult]) -> RowResult | None:
    """PyTorch FP32 on the CPU where it ran; else PyTorch FP32 anywhere; else ONNX Runtime FP32 on the CPU."""
    ok = [r for r in rows if r.ok and r.precision == "fp32" and r.latency_ms_p50]
    preferences = (
        lambda r: r.backend.startswith("torch") and r.device == "cpu",
        lambda r: r.backend.startswith("torch"),
        lambda r: r.backend.startswith("onnxruntime") and r.device == "cpu",
        lambda r: True,
    )
    for prefer in preferences:
        for row in ok:
            if prefer(row):
                return row
    return None


def baseline_note(rows: list[RowResult], baseline: RowResult | None) -> str:
    if baseline is None:
        return "no FP32 row ran, so there is no baseline: speedup and Δaccuracy are empty"
    name = Path(baseline.model).name
    if baseline.backend.startswith("torch"):
        return f"baseline: PyTorch FP32 ({name}, {baseline.device})"
    has_torch_row = any(r.backend.startswith("torch") or r.model.endswith((".pt", ".pth")) for r in rows)
    why = "the PyTorch row failed" if has_torch_row else "no .pt checkpoint was given"
    return f"baseline: {baseline.backend} FP32 ({name}), because {why}"


def mark_inherited(rows: list[RowResult]) -> None:
    """Flag quantised rows whose recorded accuracy is only the FP32 model's, copied with its metadata.

    Quantisation keeps the FP32 file's ``metrics``; an INT8 file recording exactly the FP32
    figure on the same split has not recorded its own.
    """
    fp32 = [r for r in rows if r.ok and r.precision == "fp32" and r.accuracy_recorded]
    for row in rows:
        if not (row.ok and row.accuracy_recorded and row.precision != "fp32"):
            continue
        row.accuracy_inherited = any(
            ref.accuracy == row.accuracy
            and ref.accuracy_split == row.accuracy_split
            and ref.dataset == row.dataset
            for ref in fp32
        )


def comparable(row: RowResult, baseline: RowResult) -> bool:
    """Accuracies can be subtracted: both measured here, or both recorded on the same split (not copied)."""
    if row.accuracy is None or baseline.accuracy is None or row.accuracy_inherited:
        return False
    if row.accuracy_recorded != baseline.accuracy_recorded:
        return False
    return row.accuracy_split == baseline.accuracy_split


def apply_baseline(rows: list[RowResult], baseline: RowResult | None) -> None:
    """Fill ``speedup`` (baseline p50 / row p50, batch 1) and ``delta_accuracy`` (row - baseline, points)."""
    mark_inherited(rows)
    for row in rows:
        row.baseline = row is baseline
        if baseline is None or not row.ok:
            continue
        if row.latency_ms_p50 and baseline.latency_ms_p50:
            row.speedup = baseline.latency_ms_p50 / row.latency_ms_p50
        if row is not baseline and comparable(row, baseline):
            assert row.accuracy is not None and baseline.accuracy is not None
            row.delta_accuracy = row.accuracy - baseline.accuracy
