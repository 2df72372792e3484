"""Run a whole benchmark: prepare the shared inputs, run every row in its own process, compare."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fer_edge.bench.compare import baseline_note
from fer_edge.bench.harness import MeasureConfig
from fer_edge.bench.inputs import BenchInputs, dataset_inputs, synthetic_inputs
from fer_edge.bench.isolation import DEFAULT_TIMEOUT_S, run_isolated
from fer_edge.bench.machine import machine_info
from fer_edge.bench.plan import plan_rows, shipped_fer2013_models
from fer_edge.bench.rounds import MAX_ROUNDS, merge_rounds
from fer_edge.bench.rows import DEFAULT_LOADER, RowResult, RowSpec
from fer_edge.core.errors import FerEdgeError


@dataclass
class BenchOptions:
    models: list[Path] = field(default_factory=list)  # empty: the shipped FER2013 models
    data: Path | None = None
    votes: Path | None = None
    split: str = "PrivateTest"
    batches: tuple[int, ...] = (1, 8, 64)
    threads: int | None = 2
    device: str = "auto"
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    rounds: int = 1
    loader: str = DEFAULT_LOADER
    row_timeout_s: float = DEFAULT_TIMEOUT_S
    extra_pythonpath: list[str] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        return {
            "models": [str(m) for m in self.models],
            "data": str(self.data) if self.data else None,
            "votes": str(self.votes) if self.votes else None,
            "split": self.split,
            "batches": list(self.batches),
            "threads": self.threads,
            "device": self.device,
            "measure": self.measure.to_dict(),
            "rounds": self.rounds,
        }


@dataclass
class BenchReport:
    machine: dict[str, Any]
    settings: dict[str, Any]
    inputs: str
    results: list[RowResult]
    baseline_note: str
    wall_time_s: float = 0.0

    @property
    def batches(self) -> list[int]:
        return list(self.settings.get("batches", []))


def prepare_inputs(options: BenchOptions) -> BenchInputs:
    if options.data is None:
        if options.votes is not None:
            raise FerEdgeError("--votes needs --data fer2013.csv (the votes label its images)")
        return synthetic_inputs()
    return dataset_inputs(options.data, options.split, options.votes)


def preflight(spec: RowSpec) -> RowResult | None:
    """Failures that need no child process: a missing file, a folder or a device."""
    from fer_edge.core.paths import require_file

    try:
        require_file(spec.model, "model file")
    except FerEdgeError as exc:
        return RowResult.failed(spec, str(exc))
    return None


def run_bench(
    options: BenchOptions,
    on_plan: Callable[[list[RowSpec]], None] | None = None,
    on_start: Callable[[int, RowSpec], None] | None = None,
    on_done: Callable[[int, RowResult], None] | None = None,
    argv: list[str] | None = None,
) -> BenchReport:
    """Every row, each in a fresh process; a failed row is recorded and the others go on.

    With ``options.rounds`` > 1 the rows run round-robin that many times (accuracy only in the
    first round; a row that failed is not retried) and :func:`merge_rounds` makes one row of each.
    """
    if not 1 <= options.rounds <= MAX_ROUNDS:
        raise FerEdgeError(f"--rounds must be between 1 and {MAX_ROUNDS}, got {options.rounds}")
    t0 = time.perf_counter()
    machine = machine_info(argv)  # before the rows run: its load average describes the idle machine
    models = list(options.models) or shipped_fer2013_models()
    inputs = prepare_inputs(options)
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        inputs_path = inputs.save(Path(tmp) / "inputs.npz")
        specs = plan_rows(
            models,
            options.device,
            options.threads,
            options.batches,
            inputs_path,
            options.measure.to_dict(),
            options.split,
            options.loader,
        )
        if on_plan:
            on_plan(specs * options.rounds)
        rounds: list[list[RowResult]] = []
        for r in range(options.rounds):
            results: list[RowResult] = []
            for i, spec in enumerate(specs):
                if r > 0 and not rounds[0][i].ok:
                    results.append(rounds[0][i])
                    continue
                step = r * len(specs) + i
                spec_r = spec if r == 0 else replace(spec, accuracy=False)
                if on_start:
                    on_start(step, spec_r)
                row = preflight(spec_r) or run_isolated(spec_r, options.row_timeout_s, options.extra_pythonpath)
                row.layout_note = spec_r.layout_note
                results.append(row)
                if on_done:
                    on_done(step, row)
            rounds.append(results)
    results, baseline = merge_rounds(rounds)
    n = len(inputs.images)
    if inputs.has_labels:
        described = f"{n} {inputs.split} faces from {inputs.source} ({inputs.dataset})"
    else:
        described = f"{n} {inputs.source} images; accuracy as recorded in each model's metadata"
    return BenchReport(
        machine=machine,
        settings=options.settings(),
        inputs=described,
        results=results,
        baseline_note=baseline_note(results, baseline),
        wall_time_s=time.perf_counter() - t0,
    )
