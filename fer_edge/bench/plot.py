"""Two panels: batch-1 latency vs accuracy (one point per row) and throughput vs batch size."""

from __future__ import annotations

from pathlib import Path

from fer_edge.bench.runner import BenchReport
from fer_edge.core.plots import pyplot, save_figure


def row_label(backend: str, precision: str, model: str) -> str:
    return f"{backend} {precision} ({Path(model).name})"


def write_plot(report: BenchReport, path: Path) -> None:
    plt = pyplot()
    rows = [r for r in report.results if r.ok]
    fig, (ax_lat, ax_tp) = plt.subplots(1, 2, figsize=(13, 5))
    for row in rows:
        label = row_label(row.backend, row.precision, row.model)
        if row.latency_ms_p50 is not None and row.accuracy is not None:
            marker = "o" if not row.accuracy_recorded else "s"
            ax_lat.scatter(row.latency_ms_p50, row.accuracy, marker=marker, s=60, label=label)
            ax_lat.annotate(
                row.precision,
                (row.latency_ms_p50, row.accuracy),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
            )
        sizes = sorted(int(b) for b in row.throughput)
        if sizes:
            ax_tp.plot(sizes, [row.throughput[str(b)] for b in sizes], marker="o", label=label)
    recorded = any(r.accuracy_recorded for r in rows)
    # Rows span orders of magnitude (PyTorch FP32 on a CPU vs TensorRT INT8): log axes keep all readable.
    ax_lat.set_xscale("log")
    ax_lat.set_xlabel("latency p50 at batch 1 (ms, log)  ← faster")
    ax_lat.set_ylabel("accuracy (%)" + (" (squares: recorded in metadata)" if recorded else ""))
    ax_lat.set_title("latency vs accuracy")
    ax_lat.grid(alpha=0.3)
    ax_tp.set_xscale("log", base=2)
    ax_tp.set_yscale("log")
    batches = sorted({int(b) for r in rows for b in r.throughput})
    if batches:
        ax_tp.set_xticks(batches, [str(b) for b in batches])
    ax_tp.set_xlabel("batch size")
    ax_tp.set_ylabel("throughput (images/s, log)")
    ax_tp.set_title("throughput vs batch")
    ax_tp.grid(alpha=0.3)
    for ax in (ax_lat, ax_tp):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    m = report.machine
    fig.suptitle(
        f"fer-edge bench on {m.get('cpu')} ({m.get('cores')} cores), "
        f"threads={report.settings.get('threads')}",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=120, fmt=None)
