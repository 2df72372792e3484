"""The benchmark as JSON, as a Markdown table and as a rich table on screen."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

from fer_edge.bench.rows import RowResult
from fer_edge.bench.runner import BenchReport
from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.markdown import markdown_table
from fer_edge.core.tables import FitTable, shorten
from fer_edge.model.formats import BY_SUFFIX, ELSEWHERE

OK, FAILED = "✅", "❌"
RECORDED_MARK = "*"
INHERITED_MARK = "†"
LAYOUT_MARK = "‡"
JSON_SCHEMA_VERSION = 1


def to_json_dict(report: BenchReport) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA_VERSION,
        "machine": report.machine,
        "settings": report.settings,
        "inputs": report.inputs,
        "baseline": report.baseline_note,
        "wall_time_s": round(report.wall_time_s, 2),
        "results": [r.to_dict() for r in report.results],
    }


def write_json(report: BenchReport, path: Path) -> None:
    write_text_atomic(path, json.dumps(to_json_dict(report), indent=2) + "\n")


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _accuracy(row: RowResult, split: str | None = None) -> str:
    if row.accuracy is None:
        return "–"
    mark = INHERITED_MARK if row.accuracy_inherited else RECORDED_MARK if row.accuracy_recorded else ""
    other_split = (
        f" ({row.accuracy_split})" if split and row.accuracy_split and row.accuracy_split != split else ""
    )
    return f"{row.accuracy:.2f}{mark}{other_split}"


def _delta(row: RowResult) -> str:
    if row.baseline:
        return "baseline"
    return "–" if row.delta_accuracy is None else f"{row.delta_accuracy:+.2f}"


def _speedup(row: RowResult) -> str:
    if row.baseline:
        return "1.00x"
    if row.speedup is None:
        return "–"
    if len(row.speedup_rounds) > 1:
        return f"{row.speedup:.2f}x ({min(row.speedup_rounds):.2f}-{max(row.speedup_rounds):.2f})"
    return f"{row.speedup:.2f}x"


def _throughput(row: RowResult, batch: int) -> str:
    value = row.throughput.get(str(batch))
    return "–" if value is None else f"{value:,.0f}"


def _memory(row: RowResult) -> str:
    text = _num(row.peak_memory_mb, 0)
    if row.gpu_memory_mb is not None:
        text += f" (+{row.gpu_memory_mb:.0f} GPU)"
    if row.board_ram_mb is not None:
        text += f" (board {row.board_ram_mb:.0f})"
    if row.power_w_mean is not None:
        text += f", {row.power_w_mean:.1f} W"
    return text


def _precision(row: RowResult) -> str:
    # a row that failed before its model was read does not know it ("?" in the JSON)
    text = "–" if row.precision in ("", "?") else row.precision
    return f"{text}{LAYOUT_MARK}" if row.layout_note else text


def has_gpu_time(rows: list[RowResult]) -> bool:
    return any(r.gpu_latency_ms_p50 is not None for r in rows)


def columns(batches: list[int], gpu_time: bool = False) -> list[str]:
    return [
        "",
        "Backend",
        "Precision",
        "Model",
        "Size (MB)",
        "Accuracy (%)",
        "Δacc (pts)",
        "p50 (ms)",
        "p90 (ms)",
        "p99 (ms)",
        *(["GPU p50/p99 (ms)", "Host overhead p50 (ms)"] if gpu_time else []),
        *[f"img/s @{b}" for b in batches],
        "Speedup",
        "Peak mem (MB)",
        "Load (s)",
    ]


def _gpu_time(row: RowResult) -> str:
    if row.gpu_latency_ms_p50 is None:
        return "–"
    return f"{row.gpu_latency_ms_p50:.3f}/{_num(row.gpu_latency_ms_p99, 3)}"


def cells(
    row: RowResult,
    batches: list[int],
    reason_inline: bool = True,
    split: str | None = None,
    gpu_time: bool = False,
) -> list[str]:
    name = Path(row.model).name
    if not row.ok:
        blank = ["–"] * (len(columns(batches, gpu_time)) - 5)
        return [
            FAILED,
            row.backend,
            _precision(row),
            name,
            f"failed: {row.reason}" if reason_inline else "failed",
            *blank,
        ]
    return [
        OK,
        row.backend,
        _precision(row),
        name,
        _num(row.size_mb),
        _accuracy(row),
        _delta(row),
        _num(row.latency_ms_p50, 3),
        _num(row.latency_ms_p90, 3),
        _num(row.latency_ms_p99, 3),
        *([_gpu_time(row), _num(row.host_overhead_ms_p50, 3)] if gpu_time else []),
        *[_throughput(row, b) for b in batches],
        _speedup(row),
        _memory(row),
        _num(row.load_time_s),
    ]


def notes(report: BenchReport) -> list[str]:
    out = [
        report.baseline_note,
        f"inputs: {report.inputs}",
        "latency: batch 1, one image per call, wall clock around infer(); throughput: images/s of "
        "back-to-back calls at each batch size; peak memory: the row's own process (VmHWM)",
    ]
    rounds = int(report.settings.get("rounds") or 1)
    if rounds > 1:
        out.append(
            f"{rounds} rounds: the rows ran round-robin {rounds} times, each time in a fresh process; "
            "latency, throughput and load time are the medians of the rounds, peak memory the highest; "
            "speedup is the median of each round's own ratio to the baseline (its range in brackets)"
        )
    if has_gpu_time(report.results):
        out.append(
            "GPU p50/p99: the same batch-1 calls timed by CUDA events on the backend's stream "
            "(host-to-device copy, kernels, device-to-host copy: device work only); host overhead p50: the "
            "rest of each call's wall time (copies into pinned memory, input shapes, launch, waits)"
        )
    if any(r.accuracy_recorded and not r.accuracy_inherited for r in report.results):
        out.append(
            f"{RECORDED_MARK} accuracy recorded in the model's metadata at export/quantise time "
            f"({report.settings.get('split')} unless named), not measured here: pass --data to measure"
        )
    for note in sorted({r.layout_note for r in report.results if r.layout_note}):
        out.append(
            f"{LAYOUT_MARK} {note}: this row runs it elsewhere, without the INT8 kernels the layout was made "
            f"for, so it can be slower than FP32 here; {ELSEWHERE.get(note, 'quantize --target picks the layout')}"
        )
    if any(r.accuracy_inherited for r in report.results):
        out.append(
            f"{INHERITED_MARK} the quantised file's metadata repeats the FP32 model's recorded accuracy; "
            "its own was not recorded (no Δacc): pass --data to measure it"
        )
    return out


def to_markdown(report: BenchReport) -> str:
    batches = report.batches
    split = report.settings.get("split")
    gpu_time = has_gpu_time(report.results)
    table = markdown_table(
        columns(batches, gpu_time), (cells(row, batches, split=split, gpu_time=gpu_time) for row in report.results)
    )
    m = report.machine
    gpu = ", ".join(m.get("gpu") or []) or "none"
    packages = ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items())
    meta = [
        f"- command: `{m.get('command')}`",
        f"- machine: {m.get('cpu')} ({' '.join(m.get('cpu_flags') or []) or 'no SIMD flags read'}), "
        f"{m.get('cores')} cores; GPU: {gpu}; {m.get('os')}; "
        f"Python {m.get('python')}; load average at start: {m.get('load_average')}",
        f"- packages: {packages}",
        f"- threads: {report.settings.get('threads')}; measurement: {report.settings.get('measure')}",
        *[f"- {n}" for n in notes(report)],
        f"- total wall time: {report.wall_time_s:.1f} s",
    ]
    return "\n".join(["# fer-edge bench", "", table, "", *meta]) + "\n"


def write_markdown(report: BenchReport, path: Path) -> None:
    write_text_atomic(path, to_markdown(report))


def failure_lines(report: BenchReport) -> list[str]:
    return [f"{FAILED} {Path(r.model).name} ({_where(r)}): {r.reason}" for r in report.results if not r.ok]


def _where(row: RowResult) -> str:
    # "tensorrt" on device "tensorrt", "onnxruntime-cpu" on "cpu": the device only when the backend hides it
    return row.backend if row.device in row.backend else f"{row.backend}, {row.device}"


# Short forms for a narrow terminal: the backend says what the model file's extension says.
SHORT_BACKEND = shorten([("onnxruntime", "ort"), ("tensorrt", "trt")])
MODEL_SUFFIXES = tuple(BY_SUFFIX)


FAILED_ROW_COLUMNS = ("", "Model", "Backend", "Precision", "Accuracy\n%")  # the rest show "–"


def _short_model(name: str) -> str:
    for suffix in MODEL_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _screen_columns(report: BenchReport) -> list[tuple[str, dict[str, Any], Callable[[RowResult], str]]]:
    """(header, FitTable.add_column options, cell) for each column on screen. Priority 0 is never hidden;
    the rest are hidden from the highest number down: the columns a reader needs first have the lowest."""
    rows = report.results
    batches = report.batches
    main_batch = max(batches) if batches else None
    columns: list[tuple[str, dict[str, Any], Callable[[RowResult], str]]] = [
        ("", {"justify": "left", "priority": 11, "name": "status"}, lambda r: OK if r.ok else FAILED),
        ("Model", {"justify": "left", "shrink": True, "short": _short_model}, lambda r: Path(r.model).name),
        ("Backend", {"justify": "left", "priority": 6, "short": SHORT_BACKEND}, lambda r: r.backend),
        ("Precision", {"justify": "left", "priority": 1, "short_header": "Prec"}, _precision),
        ("Size\nMB", {"priority": 15}, lambda r: _num(r.size_mb)),
        ("Accuracy\n%", {"priority": 2, "short_header": "Acc\n%"}, lambda r: _accuracy(r) if r.ok else "failed"),
        ("Δacc\npts", {"priority": 7, "short": lambda t: "base" if t == "baseline" else t}, _delta),
        ("p50\nms", {"priority": 3}, lambda r: _num(r.latency_ms_p50, 3)),
        ("p90\nms", {"priority": 14}, lambda r: _num(r.latency_ms_p90, 3)),
        ("p99\nms", {"priority": 10}, lambda r: _num(r.latency_ms_p99, 3)),
    ]
    if has_gpu_time(rows):
        columns.append(("GPU p50/p99\nms", {"priority": 9}, _gpu_time))
        columns.append(("Host p50\nms", {"priority": 21}, lambda r: _num(r.host_overhead_ms_p50, 3)))
    for b in batches:
        priority = 5 if b == main_batch else 12 if b == 1 else 13
        columns.append((f"img/s\n@{b}", {"priority": priority}, functools.partial(_throughput, batch=b)))
    columns.append(("Speedup", {"priority": 4}, lambda r: _speedup(r).split(" ")[0]))
    if any(len(r.speedup_rounds) > 1 for r in rows):
        columns.append(("Speedup\nrange", {"priority": 17}, _speedup_range))
    columns.append(("Peak mem\nMB", {"priority": 8, "short_header": "Mem\nMB"}, lambda r: _num(r.peak_memory_mb, 0)))
    if any(r.gpu_memory_mb is not None for r in rows):
        columns.append(("GPU mem\nMB", {"priority": 16}, lambda r: _num(r.gpu_memory_mb, 0)))
    if any(r.board_ram_mb is not None for r in rows):
        columns.append(("Board RAM\nMB", {"priority": 18}, lambda r: _num(r.board_ram_mb, 0)))
    if any(r.power_w_mean is not None for r in rows):
        columns.append(("Power\nW", {"priority": 19}, lambda r: _num(r.power_w_mean, 1)))
    columns.append(("Load\ns", {"priority": 20}, lambda r: _num(r.load_time_s)))
    return columns


def _speedup_range(row: RowResult) -> str:
    if len(row.speedup_rounds) < 2:
        return "–"
    return f"{min(row.speedup_rounds):.2f}-{max(row.speedup_rounds):.2f}"


def rich_table(report: BenchReport, wide: bool = False) -> FitTable:
    """The table on screen, fitted to the terminal when printed (``wide``: every column);
    failure reasons and notes go below it, where they have the full width."""
    table = FitTable("fer-edge bench", wide=wide, notes=[*failure_lines(report), *notes(report)])
    columns = _screen_columns(report)
    for header, options, _ in columns:
        table.add_column(header, **options)
    for row in report.results:
        cells = [cell(row) if row.ok or header in FAILED_ROW_COLUMNS else "–" for header, _, cell in columns]
        table.add_row(*cells, style=None if row.ok else "red")
    return table
